"""ridgebench's roofline, in two layers: :mod:`roofline.model.transformer` is the pure model (hardware specs,
the
architecture table, the analytic cost model, transformer accounting, roofs and verdicts) and
:mod:`roofline.report` reads a results directory and draws from it (plots, claims, compare, the model
step's report, the HTML page, the ``python -m roofline`` commands). The model never imports the report.
Pure Python (no GPU, no Triton); neither layer imports ``kernels`` or ``bench``."""
