"""ridgebench's Triton kernels, each with its PyTorch reference (see ``kernels/_common.py`` for the
contract every kernel module follows)."""

# Every kernel module; the audit, the benchmark suite and the tests iterate over this tuple.
KERNEL_MODULES: tuple[str, ...] = ("qkv", "gemv", "attention", "softmax", "gelu")

# triton < 3.7's interpreter fails with numpy >= 2.4; installs the upstream fix there (no-op otherwise).
from kernels import _triton_compat  # noqa: E402

_triton_compat.apply()
