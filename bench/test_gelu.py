"""GELU over MLP activations with the MLP bias fused: Triton vs ``F.gelu(x + bias)`` (two kernels)."""

from __future__ import annotations

from bench.runner import DTYPES, KernelBench, generator, randn, run_case

KERNEL = "gelu"


class GeluBench(KernelBench):
    kernel = KERNEL

    def build(self, point, device):
        s, dtype = point.shape, DTYPES[point.dtype]
        g = generator(device)
        if s["bias_len"]:
            x = randn(g, s["n"] // s["bias_len"], s["bias_len"], dtype=dtype, device=device, scale=2.0)
            b = randn(g, s["bias_len"], dtype=dtype, device=device)
            layout = "x [tokens, d_ff]; bias [d_ff]"
        else:
            x, b, layout = randn(g, s["n"], dtype=dtype, device=device, scale=2.0), None, "x [n]"
        return {"x": x, "b": b, "approximate": s["approximate"], "layout": layout}

    def triton_fn(self, kmod, x, *, first):
        return lambda: kmod.gelu(x["x"], x["b"], approximate=x["approximate"])

    def launch_args(self, x):
        return (x["x"], x["b"]), {"approximate": x["approximate"]}

    def interpreter_shape(self, shape):
        width = shape["bias_len"] or 4096
        return dict(shape, n=min(shape["n"], 4 * width))


def test_gelu(provider, point, benchmark, bench_session, request):
    run_case(GeluBench(), (provider, point), benchmark, bench_session, request)
