"""ridgebench's roofline: hardware specs, the analytic cost model, transformer accounting, plots and
claims. Pure Python (no GPU, no Triton); it reads results and never imports ``kernels`` or ``bench``."""
