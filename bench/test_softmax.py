"""Row softmax over the last dimension, short rows to 256k-column rows: Triton single-block/online vs
``torch.softmax``."""

from __future__ import annotations

from bench.runner import DTYPES, KernelBench, generator, randn, run_case

KERNEL = "softmax"


class SoftmaxBench(KernelBench):
    kernel = KERNEL

    def build(self, point, device):
        s = point.shape
        x = randn(generator(device), s["rows"], s["cols"], dtype=DTYPES[point.dtype], device=device,
                  scale=3.0)
        return {"x": x, "layout": "x [rows, cols], contiguous; softmax over cols"}

    def triton_fn(self, kmod, x, *, first):
        return lambda: kmod.softmax(x["x"])

    def launch_args(self, x):
        return (x["x"],), {}

    def interpreter_shape(self, shape):
        return dict(shape, rows=min(shape["rows"], 4))


def test_softmax(provider, point, benchmark, bench_session, request):
    run_case(SoftmaxBench(), (provider, point), benchmark, bench_session, request)
