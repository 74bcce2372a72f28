"""ridgebench's Triton kernels, each with its PyTorch reference (see ``kernels/_common.py`` for the
contract every kernel module follows)."""

# Every kernel module; the audit, the benchmark suite and the tests iterate over this tuple.
KERNEL_MODULES: tuple[str, ...] = ("qkv", "gemv", "attention", "softmax", "gelu")
