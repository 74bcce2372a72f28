"""Fused QKV projection across batch 1 -> 512 (decode: M sequences of one token) and prefill chunks:
Triton's one-kernel GEMM + head-layout epilogue vs the unfused sequence (``F.linear`` in the input
dtype, split, view/transpose, contiguous)."""

from __future__ import annotations

from bench.runner import DTYPES, KernelBench, generator, randn, run_case

KERNEL = "qkv"


class QkvBench(KernelBench):
    kernel = KERNEL
    reference = "qkv_projection_ref"
    contiguous = True  # the head-major layout is what the fused epilogue computes (and its bytes)

    def build(self, point, device):
        s, dtype = point.shape, DTYPES[point.dtype]
        g = generator(device)
        decode = point.sweep.split("/", 1)[1].startswith("decode")
        batch, tokens = (s["m"], 1) if decode else (1, s["m"])
        n_out = (s["n_heads"] + 2 * s["n_kv_heads"]) * s["head_dim"]
        x = randn(g, batch, tokens, s["d_model"], dtype=dtype, device=device)
        w = randn(g, n_out, s["d_model"], dtype=dtype, device=device, scale=s["d_model"] ** -0.5)
        b = randn(g, n_out, dtype=dtype, device=device) if s["bias"] else None
        layout = (f"x [{batch}, {tokens}, D] ({'decode: one token per sequence' if decode else 'prefill'}); "
                  "weight [(Hq+2Hkv)*Dh, D] (nn.Linear); outputs q [B,Hq,T,Dh], k/v [B,Hkv,T,Dh]")
        return {"x": x, "w": w, "b": b, "heads": dict(n_heads=s["n_heads"], n_kv_heads=s["n_kv_heads"]),
                "layout": layout}

    def triton_fn(self, kmod, x, *, first):
        return lambda: kmod.qkv_projection(x["x"], x["w"], x["b"], **x["heads"])

    def launch_args(self, x):
        return (x["x"], x["w"], x["b"]), dict(x["heads"])

    def interpreter_shape(self, shape):
        return dict(shape, m=min(shape["m"], 8))


def test_qkv(provider, point, benchmark, bench_session, request):
    run_case(QkvBench(), (provider, point), benchmark, bench_session, request)
