"""The pure model: hardware specs and the architecture table, the cost model (FLOPs and bytes per op),
transformer configs and their accounting, latency bounds, roofs, verdicts, sweeps and the model step.
It reads no results directory and never imports :mod:`roofline.report`."""
