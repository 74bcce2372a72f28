"""The one table of ops: every list of kernels derives from :data:`OPS`.

Per op: its name, a one-line summary (help texts), its cost function (:mod:`roofline.model.cost`), whether
its compute roof is the tensor-core one, its plot colour (figures list ops in table order) and the
sweep trajectories :mod:`roofline.model.sweeps` runs it along. :data:`KERNELS` (the Triton kernels, one
package ``kernels/<name>`` each), :data:`MATMUL_KERNELS` and :func:`kernel_cost`
derive from it. Adding a kernel adds one row here (docs/adding-a-kernel.md lists the rest).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from roofline.model.cost import Cost, attention_cost, gelu_cost, gemm_cost, gemv_cost, qkv_cost, softmax_cost


@dataclass(frozen=True)
class Op:
    """One row of the table."""

    name: str
    summary: str
    cost: Callable[..., Cost]  # keyword arguments = a benchmark's recorded shape, plus dtype
    matmul: bool  # its compute roof is the tensor-core one (the others are elementwise or row-wise)
    color: str  # the same op has the same colour in every figure
    trajectories: tuple[str, ...]  # the sweep trajectories (roofline.model.sweeps) it runs along
    triton: bool = True  # False: a torch-only baseline, with no kernels/<name> package


# In the order reports and figures list them.
OPS: dict[str, Op] = {op.name: op for op in (
    Op("qkv", "fused QKV projection GEMM x @ W_qkv (+ bias)", qkv_cost, True, "#1f77b4",
       ("decode", "prefill")),
    Op("gemv", "decode GEMV / skinny GEMM y = x @ W^T (+ bias)", gemv_cost, True, "#d62728", ("decode",)),
    Op("attention", "causal attention over a KV cache (prefill and split-KV decode)", attention_cost, True,
       "#2ca02c", ("prefill", "decode")),
    Op("softmax", "row softmax", softmax_cost, False, "#9467bd", ("cols", "rows")),
    Op("gelu", "elementwise GELU (erf or tanh, optional fused bias)", gelu_cost, False, "#ff7f0e", ("mlp",)),
    Op("gemm", "plain GEMM [M, K] @ [K, N] (+ bias): a torch baseline, no Triton kernel", gemm_cost, True,
       "#8c564b", (), triton=False),
)}

# The Triton kernels, each a package kernels/<name>/, in table order.
KERNELS: tuple[str, ...] = tuple(name for name, op in OPS.items() if op.triton)
MATMUL_KERNELS: frozenset[str] = frozenset(name for name, op in OPS.items() if op.matmul)


def kernel_cost(kernel: str, shape: dict, dtype: object) -> Cost:
    """The cost of ``kernel`` at ``shape`` (a benchmark's recorded shape parameters)."""
    if kernel not in OPS:
        raise KeyError(f"kernel: no cost model for {kernel!r}; known: {', '.join(OPS)}")
    return OPS[kernel].cost(**shape, dtype=dtype)


def modelled_cost(kernel: str, shape: dict, dtype: object) -> Cost | None:
    """:func:`kernel_cost`, or None for a kernel or a shape the cost model does not cover (a user's
    provider of an op of its own, a shape with arguments the cost function does not take)."""
    try:
        return kernel_cost(kernel, shape, dtype)
    except (KeyError, TypeError, ValueError):
        return None
