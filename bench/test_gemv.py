"""Decode GEMV ``y[B, N] = x[B, K] @ W^T (+ bias)`` across batch 1 -> 512: Triton split-K/tiled vs
``F.linear`` (cuBLAS on a GPU)."""

from __future__ import annotations

from bench.runner import DTYPES, KernelBench, generator, randn, run_case

KERNEL = "gemv"


class GemvBench(KernelBench):
    kernel = KERNEL

    def build(self, point, device):
        s, dtype = point.shape, DTYPES[point.dtype]
        g = generator(device)
        x = randn(g, s["batch"], s["k"], dtype=dtype, device=device)
        w = randn(g, s["n"], s["k"], dtype=dtype, device=device, scale=s["k"] ** -0.5)
        b = randn(g, s["n"], dtype=dtype, device=device) if s["bias"] else None
        return {"x": x, "w": w, "b": b, "layout": "x [B, K]; weight [N, K] (nn.Linear); bias [N]"}

    def triton_fn(self, kmod, x, *, first):
        return lambda: kmod.gemv(x["x"], x["w"], x["b"])

    def launch_args(self, x):
        return (x["x"], x["w"], x["b"]), {}

    def interpreter_shape(self, shape):
        return dict(shape, batch=min(shape["batch"], 8), n=min(shape["n"], 384))


def test_gemv(provider, point, benchmark, bench_session, request):
    run_case(GemvBench(), (provider, point), benchmark, bench_session, request)
