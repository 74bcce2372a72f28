"""The one table of ops: every list of kernels (cost functions, sweeps, the audit, plot colours, the
bench plugin's help) derives from it."""

from __future__ import annotations

# The Triton kernels, each a package kernels/<name>/, in the order reports list them.
KERNELS: tuple[str, ...] = ("qkv", "gemv", "attention", "softmax", "gelu")
