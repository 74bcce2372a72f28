"""The report: what is read from a results directory and drawn from it, on top of
:mod:`roofline.model` — the results loader, plots, claims, run-to-run compare, speedups, the model
step's report, the HTML page and the ``python -m roofline`` commands."""
