"""The provider registry (bench/providers.py): built-in providers, third-party adapters against stand-in
modules (flash-attn, FlashInfer, Liger-Kernel are not installed here), the user's ``--provider-module``
and entry points, and one end-to-end run where torch, inductor and a user module are checked, timed,
plotted and tabled, a wrong implementation fails with no time, and unavailable providers are skips."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
import torch

from bench import providers
from kernels._lib.host import host_lengths, uniform_length
from kernels.attention import attention_ref
from roofline.model.ops import KERNELS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_user_providers():
    yield
    providers._USER.clear()


def _attention_inputs(dtype=torch.float16, past=5, q_len=1, batch=2, hq=4, hkv=2, dh=16):
    g = torch.Generator().manual_seed(0)
    q = torch.randn(batch, hq, q_len, dh, generator=g).to(dtype)
    k = torch.randn(batch, hkv, past + q_len, dh, generator=g).to(dtype)
    v = torch.randn(batch, hkv, past + q_len, dh, generator=g).to(dtype)
    return q, k, v, torch.full((batch,), past, dtype=torch.int32)


def _ref(q, k, v, lens):
    return attention_ref(q.float(), k.float(), v.float(), lens)


def _bshd_ref(q, k, v, past):
    """What flash-attn computes for [B, S, H, Dh] inputs, bottom-right causal (the stand-in's maths)."""
    lens = torch.full((q.shape[0],), past, dtype=torch.int32)
    return _ref(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), lens).transpose(1, 2).to(q.dtype)


# ------------------------------------------------------------------------------------------------
# The registry
# ------------------------------------------------------------------------------------------------

def test_registry_names_kernels_and_what_runs_on_a_cpu():
    names = providers.names()
    for name in ("triton", "torch", "inductor", "sdpa-flash", "sdpa-efficient", "sdpa-cudnn", "sdpa-math",
                 "flash-attn", "flashinfer", "liger"):
        assert name in names
    for kernel in KERNELS:  # every Triton op has its torch baseline and its compiled baseline, both named
        for name in (providers.BASELINE, "inductor"):
            assert providers.has_kernel(name, kernel), (name, kernel)
            assert providers.get(name).variant.get(kernel), (name, kernel)
    assert providers.has_kernel("sdpa-math", "attention") and not providers.has_kernel("sdpa-math", "softmax")
    # Liger has GEGLU only
    assert providers.has_kernel("liger", "softmax") and not providers.has_kernel("liger", "gelu")
    here = providers.runnable_here("cpu")
    assert here[:2] == ("triton", "torch") and "sdpa-math" in here
    for gpu_only in ("sdpa-flash", "sdpa-efficient", "sdpa-cudnn", "flash-attn", "flashinfer", "liger"):
        assert gpu_only not in here
    with pytest.raises(ValueError, match="provider: expected one of"):
        providers.get("cublas")


def test_unavailable_reasons_name_the_package_or_the_device(monkeypatch):
    assert "CUDA only" in providers.get("sdpa-flash").unavailable("cpu")
    assert providers.get("sdpa-math").unavailable("cpu") is None
    reason = providers.get("flash-attn").unavailable("cuda")
    assert "package not installed" in reason and "flash_attn" in reason
    monkeypatch.setitem(sys.modules, "flash_attn", types.ModuleType("flash_attn"))
    assert providers.get("flash-attn").unavailable("cuda") is None  # installed: runs on a GPU ...
    assert "CUDA only" in providers.get("flash-attn").unavailable("cpu")  # ... not on this CPU


def test_inductor_without_a_compiler_is_unavailable_with_that_reason(monkeypatch):
    from torch._inductor import cpp_builder

    def missing():
        raise RuntimeError("Failed to find a working g++ (CXX unset)")

    monkeypatch.setattr(cpp_builder, "get_cpp_compiler", missing)
    monkeypatch.setattr(providers, "_COMPILER", [])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    reason = providers.get("inductor").unavailable("cpu")
    assert "no C++ compiler" in reason and "g++" in reason
    assert "inductor" not in providers.runnable_here("cpu")


def test_host_lengths_are_read_once_per_tensor():
    lens = torch.tensor([3, 3], dtype=torch.int32)
    assert host_lengths(lens) == (3, 3) and uniform_length(lens) == 3
    lens.fill_(9)  # the benchmark never does this; it shows the second call did not read the tensor
    assert host_lengths(lens) == (3, 3)
    assert host_lengths(torch.tensor([1, 2], dtype=torch.int32)) == (1, 2)
    with pytest.raises(NotImplementedError, match="unequal lengths"):
        uniform_length(torch.tensor([1, 2], dtype=torch.int32))


def test_sdpa_math_matches_the_reference_and_a_refusing_backend_is_unsupported(monkeypatch):
    q, k, v, lens = _attention_inputs(torch.float32, past=7, q_len=3)
    out = providers.get("sdpa-math").bind("attention")(q, k, v, lens)
    torch.testing.assert_close(out, _ref(q, k, v, lens), atol=1e-5, rtol=1e-5)

    def refuse(*a, **kw):
        raise RuntimeError("No available kernel. Aborting execution.")

    monkeypatch.setattr(providers, "torch_attention_int", refuse)
    with pytest.raises(NotImplementedError, match="FLASH_ATTENTION backend cannot run this case"):
        providers.sdpa_backend("FLASH_ATTENTION")(q, k, v, lens)


def test_torch_baselines_take_the_launcher_inputs():
    g = torch.Generator().manual_seed(1)
    x, b = torch.randn(4, 8, generator=g), torch.randn(8, generator=g)
    torch.testing.assert_close(providers.get("torch").bind("gelu")(x, b, approximate="tanh"),
                               torch.nn.functional.gelu(x + b, approximate="tanh"))
    torch.testing.assert_close(providers.get("torch").bind("softmax")(x), torch.softmax(x, -1))


def test_inductor_compiles_once_per_case_outside_the_timed_calls():
    x = torch.randn(3, 40)
    fn = providers.get("inductor").bind("softmax")
    torch.testing.assert_close(fn(x), torch.softmax(x, -1))
    fn(x), fn(x)
    stats = fn.stats()
    assert stats["graphs_compiled_first_call"] >= 1 and stats["recompiles_after_first_call"] == 0
    assert stats["first_call_s"] > 0 and stats["dynamic"] is False
    assert providers.get("inductor").bind("softmax") is not fn  # a fresh compile for the next case


# ------------------------------------------------------------------------------------------------
# Third-party adapters, with stand-in modules
# ------------------------------------------------------------------------------------------------

@pytest.fixture
def fake_flash_attn(monkeypatch):
    calls = []

    def flash_attn_func(q, k, v, causal=False):
        assert causal and q.stride(-1) == 1 and k.stride(-1) == 1 and q.shape[1] == k.shape[1]
        calls.append(("func", None))
        return _bshd_ref(q, k, v, 0)

    def flash_attn_with_kvcache(q, k_cache, v_cache, cache_seqlens=None, causal=False):
        assert causal and cache_seqlens.dtype == torch.int32
        calls.append(("kvcache", cache_seqlens.tolist()))
        (total,) = set(cache_seqlens.tolist())
        return _bshd_ref(q, k_cache[:, :total], v_cache[:, :total], total - q.shape[1])

    mod = types.ModuleType("flash_attn")
    mod.flash_attn_func, mod.flash_attn_with_kvcache = flash_attn_func, flash_attn_with_kvcache
    monkeypatch.setitem(sys.modules, "flash_attn", mod)
    return calls


def test_flash_attn_prefill_uses_flash_attn_func_and_decode_the_kvcache_api(fake_flash_attn):
    fn = providers.get("flash-attn").bind("attention")
    q, k, v, lens = _attention_inputs(past=0, q_len=6)
    out = fn(q, k, v, lens)
    assert out.shape == q.shape and fake_flash_attn[-1] == ("func", None)
    torch.testing.assert_close(out.float(), _ref(q, k, v, lens), atol=2e-3, rtol=2e-3)
    q, k, v, lens = _attention_inputs(past=9, q_len=1)
    out = fn(q, k, v, lens)
    assert fake_flash_attn[-1] == ("kvcache", [10, 10])  # cache_seqlens counts the new token
    torch.testing.assert_close(out.float(), _ref(q, k, v, lens), atol=2e-3, rtol=2e-3)
    with pytest.raises(NotImplementedError, match="fp16/bf16"):
        fn(*_attention_inputs(torch.float32))


def test_flashinfer_decode_loops_single_decode_over_the_batch(monkeypatch):
    seen = []

    def single_decode_with_kv_cache(q, k, v, kv_layout="NHD"):
        assert kv_layout == "HND" and q.dim() == 2 and k.dim() == 3
        seen.append(k.shape[1])
        return _ref(q[None, :, None], k[None], v[None], torch.tensor([k.shape[1] - 1]))[0, :, 0].to(q.dtype)

    mod = types.ModuleType("flashinfer")
    mod.single_decode_with_kv_cache = single_decode_with_kv_cache
    monkeypatch.setitem(sys.modules, "flashinfer", mod)
    assert providers.get("flashinfer").unavailable("cuda") is None
    fn = providers.get("flashinfer").bind("attention")
    q, k, v, lens = _attention_inputs(past=11, q_len=1, batch=3)
    out = fn(q, k, v, lens)
    assert seen == [12, 12, 12] and out.shape == q.shape
    torch.testing.assert_close(out.float(), _ref(q, k, v, lens), atol=2e-3, rtol=2e-3)
    with pytest.raises(NotImplementedError, match="one query token"):
        fn(*_attention_inputs(past=4, q_len=2))


def test_liger_softmax_adapter(monkeypatch):
    ops = types.ModuleType("liger_kernel.ops.softmax")
    ops.LigerSoftmaxFunction = types.SimpleNamespace(apply=lambda x: torch.softmax(x, -1) + 0.0)
    monkeypatch.setitem(sys.modules, "liger_kernel", types.ModuleType("liger_kernel"))
    monkeypatch.setitem(sys.modules, "liger_kernel.ops", types.ModuleType("liger_kernel.ops"))
    monkeypatch.setitem(sys.modules, "liger_kernel.ops.softmax", ops)
    assert providers.get("liger").unavailable("cuda") is None
    x = torch.randn(2, 5)
    torch.testing.assert_close(providers.get("liger").bind("softmax")(x), torch.softmax(x, -1))


# ------------------------------------------------------------------------------------------------
# The user's providers
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("table, message", [
    ([], "PROVIDERS must be a non-empty dict"),
    ({"torch": {"softmax": torch.softmax}}, "'torch' is built in"),
    ({"all": {"softmax": torch.softmax}}, "not 'all'"),
    ({"a,b": {"softmax": torch.softmax}}, "without commas"),
    ({"mine": {"layernorm": torch.softmax}}, "'layernorm'\\]: unknown kernel"),
    ({"mine": {"softmax": 3}}, "is a int, not a callable"),
    ({"mine": {}}, "must be a non-empty dict"),
])
def test_malformed_providers_tables_are_refused(table, message):
    with pytest.raises(providers.ProviderError, match=message):
        providers.providers_from(table, "--provider-module m")


def test_modules_and_entry_points_register_and_conflicts_are_refused(monkeypatch):
    mod = types.ModuleType("my_kernels_x")
    mod.PROVIDERS = {"mine": {"softmax": lambda x: torch.softmax(x, -1)}}
    monkeypatch.setitem(sys.modules, "my_kernels_x", mod)

    class EP:
        name, value = "pkg", "pkg.providers:TABLE"

        @staticmethod
        def load():
            return {"theirs": {"gelu": torch.nn.functional.gelu}}

    monkeypatch.setattr(providers, "_entry_points", lambda: [EP])
    found = providers.load_user_providers(["my_kernels_x"])
    assert set(found) == {"mine", "theirs"} and "mine" in providers.names() and "theirs" in providers.names()
    assert providers.get("theirs").source == "entry point pkg (pkg.providers:TABLE)"
    assert providers.has_kernel("mine", "softmax") and not providers.has_kernel("mine", "gelu")
    EP.load = staticmethod(lambda: {"mine": {"gelu": torch.nn.functional.gelu}})
    already = "'mine' is also defined by --provider-module my_kernels_x"
    with pytest.raises(providers.ProviderError, match=already):
        providers.load_user_providers(["my_kernels_x"])
    with pytest.raises(providers.ProviderError, match="import failed: ModuleNotFoundError"):
        providers.load_user_providers(["no_such_module_ridgebench"], use_entry_points=False)
    empty = types.ModuleType("no_table_x")
    monkeypatch.setitem(sys.modules, "no_table_x", empty)
    with pytest.raises(providers.ProviderError, match="defines no PROVIDERS"):
        providers.load_user_providers(["no_table_x"], use_entry_points=False)


# ------------------------------------------------------------------------------------------------
# End to end: pytest --benchmark with --provider-module
# ------------------------------------------------------------------------------------------------

USER_MODULE = '''
"""Plain-torch providers for the ridgebench test: one right, one wrong."""
import torch


def softmax(x):
    return torch.softmax(x, dim=-1)


def gelu(x, bias, *, approximate):
    return torch.nn.functional.gelu(x if bias is None else x + bias, approximate=approximate)


def wrong_softmax(x):
    return torch.softmax(x, dim=0)  # over the wrong axis


def picky_gelu(x, bias, *, approximate):
    raise NotImplementedError("picky: erf GELU only")


def clobber_softmax(x):
    x.zero_()  # zeroes its input, then returns the (uniform) softmax of what is left
    return torch.softmax(x, dim=-1)


def wide_softmax(x):
    return torch.softmax(x.double(), dim=-1)  # more accurate, but not the launcher's dtype


def none_softmax(x):
    torch.softmax(x, dim=-1)


PROVIDERS = {"mine": {"softmax": softmax, "gelu": gelu}, "wrong": {"softmax": wrong_softmax},
             "picky": {"gelu": picky_gelu}, "clobber": {"softmax": clobber_softmax},
             "wide": {"softmax": wide_softmax}, "none": {"softmax": none_softmax}}
'''


def _bench(tmp_path: Path, *args: str, module_source: str | None = USER_MODULE, timeout: int = 600):
    mods = tmp_path / "mods"
    mods.mkdir(exist_ok=True)
    if module_source is not None:
        (mods / "my_kernels.py").write_text(textwrap.dedent(module_source))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT")) and k != "TRITON_INTERPRET"}
    env["CUDA_VISIBLE_DEVICES"] = ""  # the machine chosen: a CPU run, also on a GPU machine
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(mods), env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "pytest", "--benchmark", "--sweep", "smoke",
           f"--results-root={tmp_path / 'r'}", "--benchmark-max-time=0.02", "--ceilings-budget=0.05", "-q",
           "-p", "no:cacheprovider", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_user_module_inductor_and_unavailable_providers_end_to_end(tmp_path):
    # bf16 chosen explicitly (the sweep's dtype on a CPU with native bf16, not on others): the README's
    # `F.gelu(x + bias)` rounds x + bias to bf16 first and must pass the same gate as every provider
    proc = _bench(tmp_path, "--kernels", "softmax,gelu,attention", "--provider-module", "my_kernels",
                  "--dtype", "bfloat16", "--providers",
                  "torch,inductor,mine,wrong,picky,clobber,wide,none,sdpa-flash,flash-attn,flashinfer,liger")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-4000:]  # the wrong and contract-breaking providers fail; nothing else
    failed = sorted(line.split("[")[1].split("-")[0] for line in proc.stdout.splitlines()
                    if line.startswith("FAILED"))
    assert failed == ["clobber", "none", "wide", "wrong"], proc.stdout[-4000:]
    assert "wrong softmax C176 bfloat16: wrong result, max error" in proc.stdout
    assert "x plain PyTorch's" in proc.stdout
    assert "changed its input (argument 0" in proc.stdout
    assert "is torch.float64; expected torch.bfloat16" in proc.stdout
    assert "returned None; expected a tensor (3, 176) torch.bfloat16" in proc.stdout
    (run,) = [p for p in (tmp_path / "r").glob("*/*") if p.is_dir()]
    records = [b["extra_info"] for b in json.loads((run / "benchmark.json").read_text())["benchmarks"]]
    timed = {(r["provider"], r["kernel"]) for r in records}
    assert timed == {(p, k) for p in ("torch", "inductor") for k in ("softmax", "gelu", "attention")} | {
        ("mine", "softmax"), ("mine", "gelu")}
    for r in records:
        acc = r["accuracy"]  # one gate for every provider, recorded
        assert r["max_error"] == acc["max_error"] <= acc["bound"] == r["tolerance"][0] and r["median_s"] > 0
        assert acc["ratio"] <= acc["factor"] or acc["max_error"] <= acc["atol"]
        if r["provider"] in ("torch", "mine"):  # plain PyTorch in bf16: exactly the plain run's error
            assert acc["ratio"] == 1.0, r
        if r["provider"] == "inductor":
            assert r["compile"]["graphs_compiled_first_call"] >= 1 and r["compile"]["first_call_s"] > 0
            assert r["variant"].startswith("torch.compile(")
        if r["provider"] == "mine":
            assert r["variant"].startswith("--provider-module my_kernels:")
    skipped = json.loads((run / "skipped.json").read_text())
    why = {(s["provider"], s["kernel"]): (s["category"], s["reason"])
           for s in skipped if s["provider"] != "triton"}
    assert why[("sdpa-flash", "attention")] == ("unavailable",
                                                "sdpa-flash runs on CUDA only; this run is on a CPU")
    for name, kernel in (("flash-attn", "attention"), ("flashinfer", "attention"), ("liger", "softmax")):
        category, reason = why[(name, kernel)]
        assert category == "unavailable" and "package not installed" in reason, (name, reason)
    for name in ("wrong", "clobber", "wide", "none"):  # failed: no time, no skip
        assert (name, "softmax") not in why and (name, "softmax") not in timed
    assert why[("picky", "gelu")][0] == "unsupported" and "erf GELU only" in why[("picky", "gelu")][1]
    roofline = next(run.glob("roofline-*.svg")).read_text()
    for provider in ("torch", "inductor", "mine"):
        assert f"measured:test_softmax[{provider}-" in roofline
    speedup = (run / next(p.name for p in run.glob("speedup-softmax-*.svg"))).read_text()
    assert "speedup:softmax/cols.r3:inductor" in speedup and "speedup:softmax/cols.r3:mine" in speedup
    assert list(run.glob("speedup-gelu-*.png")) and list(run.glob("speedup-attention-*.png"))
    claims = (run / "claims.md").read_text()
    assert "## Providers vs the torch baseline" in claims
    assert "| softmax | softmax/cols.r3 | bfloat16 | mine | 1 |" in claims


def test_a_module_that_fails_to_import_is_one_line_and_exit_4(tmp_path):
    proc = _bench(tmp_path, "--provider-module", "my_kernels", module_source="import no_such_package_x\n")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "my_kernels" in line]
    assert len(errors) == 1 and "import failed: ModuleNotFoundError" in errors[0], proc.stderr
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").glob("*/*"))  # nothing measured
    for source, error in (("import sys\nsys.exit(3)\n", "import failed: SystemExit: 3"),
                          ("raise BaseException('odd')\n", "import failed: BaseException: odd")):
        proc = _bench(tmp_path, "--provider-module", "my_kernels", module_source=source)
        errors = [line for line in proc.stderr.splitlines() if "my_kernels" in line]
        assert proc.returncode == 4 and "INTERNALERROR" not in proc.stdout + proc.stderr, proc.stderr
        assert len(errors) == 1 and error in errors[0], proc.stderr
    proc = _bench(tmp_path, "--provider-module", "my_kernels",
                  module_source="PROVIDERS = {'x': {'nope': len}}\n")
    assert proc.returncode == 4 and "unknown kernel" in proc.stderr
    proc = _bench(tmp_path, "--providers", "torch,cublas", module_source=None)
    assert proc.returncode == 4 and "--providers torch,cublas" in proc.stderr


def test_a_user_module_that_imports_our_kernels_runs_them_under_the_interpreter(tmp_path):
    """A provider module that imports ``kernels`` at import time (to wrap or compare with ours) is loaded
    after the plugin decided interpreter-or-GPU, so ours still run (no ``0 active drivers``)."""
    source = """
        from kernels.gelu import gelu as ours


        def wrapped(x, bias, *, approximate):
            return ours(x, bias, approximate=approximate)


        PROVIDERS = {"wrapped": {"gelu": wrapped}}
    """
    proc = _bench(tmp_path, "--provider-module", "my_kernels", "--providers", "triton,wrapped",
                  "--kernels", "gelu", module_source=source)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "active drivers" not in proc.stdout + proc.stderr
    (run,) = [p for p in (tmp_path / "r").glob("*/*") if p.is_dir()]
    benchmarks = json.loads((run / "benchmark.json").read_text())["benchmarks"]
    timed = {b["extra_info"]["provider"] for b in benchmarks}
    assert "wrapped" in timed  # checked against the reference, then timed on the CPU


def test_a_broken_entry_point_is_set_aside_and_named_when_a_run_asks_for_an_unknown_provider(monkeypatch):
    class Broken:
        name, value = "bad", "badpkg.providers"

        @staticmethod
        def load():
            raise SystemExit(3)

    class Good:
        name, value = "good", "goodpkg:TABLE"
        load = staticmethod(lambda: {"theirs": {"gelu": torch.nn.functional.gelu}})

    monkeypatch.setattr(providers, "_entry_points", lambda: [Broken, Good])
    assert set(providers.load_user_providers([])) == {"theirs"}  # the good one still registers
    source = "entry point bad (badpkg.providers)"
    assert providers.broken_entry_points() == {source: f"{source}: import failed: SystemExit: 3"}
    msg = providers.unknown_providers_error("--providers", "torch,badprov", ["badprov"])
    assert "unknown provider 'badprov'" in msg and "import failed: SystemExit: 3" in msg
    monkeypatch.setattr(providers, "_entry_points", lambda: [Good])
    providers.load_user_providers([])
    assert providers.broken_entry_points() == {}  # a reload forgets the broken ones


def test_a_broken_installed_entry_point_warns_unless_the_run_asks_for_an_unknown_provider(tmp_path):
    mods = tmp_path / "mods"
    dist = mods / "brokenpkg-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenpkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[ridgebench.providers]\nbad = broken_provider_mod\n")
    (mods / "broken_provider_mod.py").write_text("import no_such_package_y\n")
    proc = _bench(tmp_path, "--providers", "torch", "--kernels", "softmax", "--collect-only",
                  module_source=None)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    warned = [line for line in proc.stderr.splitlines() if "broken_provider_mod" in line]
    assert len(warned) == 1 and "warning" in warned[0] and "ModuleNotFoundError" in warned[0], proc.stderr
    proc = _bench(tmp_path, "--providers", "torch,badprov", "--kernels", "softmax", "--collect-only",
                  module_source=None)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "unknown provider 'badprov'" in proc.stderr
    assert "entry point bad (broken_provider_mod)" in proc.stderr


def test_providers_all_collects_what_can_run_here(tmp_path):
    proc = _bench(tmp_path, "--providers", "all", "--kernels", "attention,softmax", "--collect-only",
                  module_source=None)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ids = [line for line in proc.stdout.splitlines() if "::" in line]
    for provider in ("triton", "torch", "inductor", "sdpa-math"):
        assert any(f"test_attention[{provider}-" in i for i in ids), provider
    assert not any("sdpa-math" in i and "test_softmax" in i for i in ids)  # attention only
    assert not any(name in i for i in ids for name in ("sdpa-flash", "flash-attn", "flashinfer", "liger"))


# ------------------------------------------------------------------------------------------------
# Who is ahead: the speedup numbers, the figure's markers
# ------------------------------------------------------------------------------------------------

def _record(provider, rows, median_s, sweep="softmax/cols"):
    from roofline.report.results import Record

    shape = {"rows": rows, "cols": 128}
    return Record(f"test_softmax[{provider}-{rows}]", "softmax", None, provider, sweep, shape, "float32",
                  "cpu: X", "cpu", 5.0 * rows * 128, 8.0 * rows * 128, median_s, median_s * 0.9,
                  median_s * 1.1, "fp32", extra={"label": f"R{rows}"})


def test_speedup_is_torch_time_over_provider_time_at_the_same_point():
    from roofline.report.speedup import speedups, table_lines

    records = [_record("torch", 4, 2e-3), _record("torch", 8, 4e-3), _record("mine", 4, 1e-3),
               _record("mine", 8, 8e-3), _record("mine", 16, 1e-3),  # no torch at rows=16: left out
               _record("inductor", 4, 4e-3, sweep="softmax/other")]  # another sweep: no torch there
    got = {(s.provider, s.label): s.speedup for s in speedups(records)}
    assert got == {("torch", "R4"): 1.0, ("torch", "R8"): 1.0, ("mine", "R4"): 2.0, ("mine", "R8"): 0.5}
    lines = table_lines(records)
    row = next(line for line in lines if "| mine |" in line)
    assert row == "| softmax | softmax/cols | float32 | mine | 2 | 1.00x | 0.50x | 2.00x |"  # geomean(2, 0.5)
    assert not any("inductor" in line for line in lines)
    assert table_lines([_record("torch", 4, 2e-3)]) == []  # nothing to compare: no table


def test_ours_against_each_provider_at_the_same_points():
    from roofline.report.speedup import versus_lines

    records = [_record("triton", 4, 1e-3), _record("triton", 8, 2e-3), _record("sdpa-flash", 4, 0.9e-3),
               _record("sdpa-flash", 8, 2.2e-3), _record("torch", 4, 3e-3)]
    lines = versus_lines(records)
    assert "| softmax | softmax/cols | float32 | sdpa-flash | 2 | 0.99x | 0.90x | 1.10x |" in lines
    assert "| softmax | softmax/cols | float32 | torch | 1 | 3.00x | 3.00x | 3.00x |" in lines
    assert versus_lines([_record("torch", 4, 3e-3), _record("mine", 4, 1e-3)]) == []  # no triton


def test_every_builtin_provider_and_a_few_user_ones_get_their_own_marker():
    from roofline.report.plot.render import provider_marker

    known = [*providers.names(), "mine", "theirs", "yours"]
    markers = [provider_marker(p, known) for p in known]
    assert len(set(markers)) == len(markers) and not {"D", "*"} & set(markers)  # those mark ridges


# ------------------------------------------------------------------------------------------------
# One path for every provider: no provider name compared as a string outside the registry
# ------------------------------------------------------------------------------------------------

def provider_name_comparisons(source: str, names: set[str]) -> list[int]:
    """Lines of ``source`` that compare with a provider name written as a string literal (``==``, ``!=``,
    ``in``, ``not in``, against the literal or a tuple/list/set of literals holding one)."""
    import ast

    def literal_names(node: ast.AST) -> bool:
        if isinstance(node, ast.Constant):
            return node.value in names
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return any(isinstance(e, ast.Constant) and e.value in names for e in node.elts)
        return False

    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and any(
                isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn, ast.Is, ast.IsNot)) for op in node.ops):
            if any(literal_names(side) for side in (node.left, *node.comparators)):
                lines.append(node.lineno)
    return lines


def test_the_check_finds_every_form_of_comparison():
    names = {"triton", "torch"}
    code = textwrap.dedent("""\
        if provider == "triton": pass
        if "torch" != p: pass
        if p in ("torch", "triton"): pass
        if p not in ["x", "torch"]: pass
        if "triton" in chosen: pass
        ok = p == OURS or p in names() or "torch" + "x" == y or label == "tritonx" or f(p="torch")
        """)
    assert provider_name_comparisons(code, names) == [1, 2, 3, 4, 5]


def test_no_provider_name_is_compared_as_a_string_outside_the_registry():
    """bench/providers.py is the one place a provider's name means something: every other module of the
    project asks the Provider (its flags, its callables), so a new provider needs no branch anywhere."""
    names = set(providers.names())
    offenders = {}
    for package in ("bench", "kernels", "roofline", "scripts"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "bench" / "providers.py":
                continue
            found = provider_name_comparisons(path.read_text(), names)
            if found:
                offenders[str(path.relative_to(ROOT))] = found
    assert offenders == {}


def test_the_registry_imports_no_kernel_before_a_case_runs():
    """The plugin asks for provider names and kernels at start-up, before the interpreter decision: the
    registry answers them without importing ``kernels`` (Triton reads TRITON_INTERPRET at import)."""
    code = ("import sys, bench.plugin, bench.providers as p; p.names(); "
            "assert all(p.has_kernel(n, k) for n in ('triton', 'torch') for k in p.KERNELS); "
            "assert 'gelu' in p.get('triton').impls and 'nope' not in p.get('torch').impls; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('kernels', 'triton')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
