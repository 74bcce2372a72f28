"""The PREDICTED tokens/s per GPU of a whole generation against the batch size, one line per hardware
preset, with each preset's ridge batch marked (:mod:`roofline.model.generation`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from roofline.model.generation import Generation
from roofline.report.plot.files import save
from roofline.report.plot.render import plt

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def generation_figure(runs: Mapping[str, Sequence[Generation]], title: str):
    """``runs``: a label (the hardware) -> its generations at increasing batch sizes."""
    fig, ax = plt.subplots(figsize=(8.0, 5.2))
    fig.subplots_adjust(left=0.11, right=0.97, top=0.88, bottom=0.12)
    for i, (label, gens) in enumerate(runs.items()):
        color = COLORS[i % len(COLORS)]
        batches = [g.batch for g in gens]
        ax.plot(batches, [g.tokens_per_s_per_gpu for g in gens], "o-", color=color,
                label=f"{label}: end to end")
        decode = [g.decode_tokens_per_s_per_gpu for g in gens]
        if all(d is not None for d in decode):
            ax.plot(batches, decode, "--", color=color, alpha=0.6,
                    label=f"{label}: decode only (batch / TPOT)")
        ridge, ridge0 = gens[-1].ridge_batch, gens[-1].ridge_batch_weights
        if ridge0 is not None:
            ax.axvline(ridge0, color=color, linestyle=":", linewidth=1.2)
            at = "never at this context" if ridge is None else f"{ridge} at mid context"
            ax.annotate(f"ridge batch {ridge0}\n(empty cache; {at})", (ridge0, 0.02 + 0.09 * i),
                        xycoords=("data", "axes fraction"), color=color, fontsize=7, ha="right",
                        rotation=0, xytext=(-3, 0), textcoords="offset points")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch (sequences)")
    ax.set_ylabel("tokens/s per GPU (PREDICTED lower-bound times)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    return fig


def plot_generation(runs: Mapping[str, Sequence[Generation]], base: str | Path) -> list[Path]:
    """Draw :func:`generation_figure` into ``base.png`` and ``base.svg``; returns the paths."""
    first = next(iter(runs.values()))[0]
    p = first.precision
    prec = p["weights"] if p["weights"] == p["activations"] == p["kv"] else (
        f"w {p['weights']}, a {p['activations']}, kv {p['kv']}")
    title = (f"PREDICTED: {first.model}, {first.prompt} prompt + {first.output} output tokens, {prec}, "
             f"{first.attention} attention, tp {first.tp}")
    base = Path(base)
    if base.suffix in (".png", ".svg"):
        base = base.with_suffix("")
    return save(generation_figure(runs, title), base)
