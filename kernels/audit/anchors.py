"""The peers' numbers on the audit's own scale: Triton's tutorials compiled here, measured by our loop metric.

``python -m kernels.audit.anchors`` compiles, for ``sm_100`` (or any audited arch), the Blackwell paths of
two Triton tutorials on ridgebench's shapes and prints the audit's loop column for each
(:func:`kernels.audit.efficiency.efficiency`, the same rules as every audit line):

- tutorial 06 (fused attention), its ``_attn_fwd`` with ``warp_specialize=True`` and host tensor
  descriptors, causal (``STAGE=3``), fp16, head dim 128, B=1, H=32, S=2048; ``maxnreg`` 168 as the
  tutorial's launcher sets it on Blackwell for that head dim and dtype. Streamed per iteration: the K and
  V tiles, as for ridgebench's prefill;
- tutorial 09 (persistent matmul), its ``matmul_kernel_descriptor_persistent`` with ``FLATTEN`` and
  ``WARP_SPECIALIZE`` on (its Blackwell path), fp16, M = K = 4096, N = 12288 (llama2-7b's QKV), on
  the B200 preset's 148 SMs. Streamed per K step: the A and B tiles, as for ridgebench's QKV GEMM.

Each anchor is compiled at several of the tutorial's own autotune configs (no GPU here, so nothing
picks one); the table lists them all.

The tutorials are not part of this repository: they are read at run time from a directory holding
``06-fused-attention.py`` and ``09-persistent-matmul.py`` as ``python/tutorials/`` of a Triton checkout
has them (``--tutorials DIR``, else ``$RIDGEBENCH_TRITON_TUTORIALS``, else
``~/.cache/ridgebench/triton-tutorials``; a ``SOURCE`` file there, if any, is printed as their
provenance). Without them the command says so and exits 0 (nothing to compare). The tutorial modules
cannot be imported on a machine without a GPU (they query the active device at import), so
:func:`jit_source` extracts their ``@triton.jit`` functions only (dropping autotune and launch-metadata
decorators) into a generated module under the same cache directory, which Triton compiles like any
other.

Static counts, not timings: a kernel with fewer loop instructions per KiB issues less per byte it
streams; only a GPU says what either runs at.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib.util
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

PROG = "python -m kernels.audit.anchors"
TUTORIALS_ENV = "RIDGEBENCH_TRITON_TUTORIALS"
ATTENTION_FILE = "06-fused-attention.py"
MATMUL_FILE = "09-persistent-matmul.py"


def default_tutorials_dir() -> Path:
    """``$RIDGEBENCH_TRITON_TUTORIALS``, else ``$XDG_CACHE_HOME`` (or ``~/.cache``)
    ``/ridgebench/triton-tutorials``."""
    env = os.environ.get(TUTORIALS_ENV)
    if env:
        return Path(env)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "ridgebench" / "triton-tutorials"


# ----------------------------------------------------------------------------------------------
# Extracting a tutorial's @triton.jit functions
# ----------------------------------------------------------------------------------------------

def _is_triton_jit(node: ast.expr) -> bool:
    """``@triton.jit`` or ``@triton.jit(...)`` (also a bare ``@jit``)."""
    target = node.func if isinstance(node, ast.Call) else node
    return ast.unparse(target) in ("triton.jit", "jit")


def jit_source(text: str) -> str:
    """A module holding only the top-level ``@triton.jit`` functions of ``text`` (a tutorial's source),
    each under a plain ``@triton.jit`` (autotune, launch metadata and other decorators dropped), after
    ``import triton`` / ``import triton.language as tl``. Raises ``ValueError`` when there is none."""
    tree = ast.parse(text)
    lines = text.splitlines()
    chunks = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and any(_is_triton_jit(d) for d in node.decorator_list):
            chunks.append("@triton.jit\n" + "\n".join(lines[node.lineno - 1:node.end_lineno]))
    if not chunks:
        raise ValueError("text: no top-level @triton.jit function in the tutorial source")
    return "import triton\nimport triton.language as tl\n\n\n" + "\n\n\n".join(chunks) + "\n"


def load_jit_module(path: Path, cache_dir: Path):
    """Import the ``@triton.jit`` functions of the tutorial at ``path`` (:func:`jit_source`), written to
    ``cache_dir/extracted/`` (Triton reads a kernel's source from its file)."""
    source = jit_source(path.read_text())
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    name = f"tutorial_{path.stem.replace('-', '_')}_{digest}"
    out = cache_dir / "extracted" / f"{name}.py"
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists() or out.read_text() != source:
        out.write_text(source)
    spec = importlib.util.spec_from_file_location(name, out)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------------------------
# The anchors: which tutorial kernel, on which shape and configs
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Anchor:
    """One tutorial kernel at one config. ``kernel``/``variant``: ridgebench's op whose streaming rule
    (:func:`kernels.audit.efficiency.stream_per_iteration`) applies; ``tiles``: its tile constexprs
    under ridgebench's names; ``args``: runtime arguments (tensors on ``meta``, tensor descriptors,
    ints, floats) and ``constexprs`` the tutorial's; ``options``: compile options beyond warps and
    stages (``maxnreg``)."""

    name: str
    file: str
    fn_name: str
    kernel: str
    variant: str
    config: str
    args: Mapping[str, object]
    constexprs: Mapping[str, object]
    tiles: Mapping[str, int]
    num_warps: int
    num_stages: int
    options: Mapping[str, object] = field(default_factory=dict)
    k_steps: int | None = None


# ridgebench's shapes (llama2-7b): prefill B=1, H=32, S=2048, head dim 128; QKV M=K=4096, N=12288
PREFILL_SHAPE = {"batch": 1, "heads": 32, "seq": 2048, "head_dim": 128}
GEMM_SHAPE = {"m": 4096, "n": 12288, "k": 4096}
GEMM_PRESET = "B200"  # NUM_SMS of the persistent GEMM: this preset's SM count
# tutorial 06's launcher on Blackwell with warp specialization: maxnreg 168 at head dim 128 in fp16
ATTENTION_MAXNREG = 168
# (BLOCK_M, BLOCK_N, warps, stages) of tutorial 06's autotune list compiled here: its 128x128 tiles
ATTENTION_CONFIGS = [(128, 128, 4, 2), (128, 128, 4, 3), (128, 64, 4, 3)]
# (BLOCK_M, BLOCK_N, BLOCK_K, warps, stages, EPILOGUE_SUBTILE) of tutorial 09's autotune list
MATMUL_CONFIGS = [(128, 256, 64, 4, 3, False), (128, 256, 128, 4, 2, False), (128, 256, 64, 4, 3, True),
                  (128, 128, 128, 4, 3, False)]


def attention_anchors() -> list[Anchor]:
    """Tutorial 06's warp-specialized Blackwell path at :data:`ATTENTION_CONFIGS`."""
    import torch
    from triton.tools.tensor_descriptor import TensorDescriptor

    b, h, s, d = (PREFILL_SHAPE[k] for k in ("batch", "heads", "seq", "head_dim"))
    rows = b * h * s
    qkvo = torch.empty((rows, d), dtype=torch.float16, device="meta")
    out = []
    for bm, bn, warps, stages in ATTENTION_CONFIGS:
        def desc(block_rows: int) -> TensorDescriptor:
            return TensorDescriptor(qkvo, shape=[rows, d], strides=[d, 1], block_shape=[block_rows, d])

        out.append(Anchor(
            name="tutorial 06 _attn_fwd (warp_specialize)", file=ATTENTION_FILE, fn_name="_attn_fwd",
            kernel="attention", variant="prefill",
            config=f"M={bm},N={bn},w={warps},s={stages},maxnreg={ATTENTION_MAXNREG}",
            args={"sm_scale": 0.5, "M": torch.empty((b, h, s), dtype=torch.float32, device="meta"),
                  "Z": b, "H": h, "desc_q": desc(bm), "desc_k": desc(bn), "desc_v": desc(bn),
                  "desc_o": desc(bm), "N_CTX": s},
            constexprs={"HEAD_DIM": d, "BLOCK_M": bm, "BLOCK_N": bn, "FP8_OUTPUT": False, "STAGE": 3,
                        "warp_specialize": True, "IS_HOPPER": False},
            tiles={"BLOCK_M": bm, "BLOCK_N": bn, "HEAD_DIM": d},
            num_warps=warps, num_stages=stages, options={"maxnreg": ATTENTION_MAXNREG},
        ))
    return out


def matmul_anchors(n_sms: int | None = None) -> list[Anchor]:
    """Tutorial 09's descriptor-persistent kernel, warp-specialized and flattened, at
    :data:`MATMUL_CONFIGS`, persistent over ``n_sms`` SMs (default: the :data:`GEMM_PRESET` preset's)."""
    import torch

    from roofline.model.hardware import get_preset

    n_sms = n_sms or get_preset(GEMM_PRESET).sm_count

    m, n, k = GEMM_SHAPE["m"], GEMM_SHAPE["n"], GEMM_SHAPE["k"]
    out = []
    for bm, bn, bk, warps, stages, subtile in MATMUL_CONFIGS:
        out.append(Anchor(
            name="tutorial 09 matmul_kernel_descriptor_persistent (WS, FLATTEN)", file=MATMUL_FILE,
            fn_name="matmul_kernel_descriptor_persistent", kernel="qkv", variant="tma",
            config=f"M={bm},N={bn},K={bk},w={warps},s={stages}" + (",subtile" if subtile else ""),
            args={"a_ptr": torch.empty((m, k), dtype=torch.float16, device="meta"),
                  "b_ptr": torch.empty((n, k), dtype=torch.float16, device="meta"),
                  "c_ptr": torch.empty((m, n), dtype=torch.float16, device="meta"), "M": m, "N": n, "K": k},
            constexprs={"BLOCK_SIZE_M": bm, "BLOCK_SIZE_N": bn, "BLOCK_SIZE_K": bk, "GROUP_SIZE_M": 8,
                        "EPILOGUE_SUBTILE": subtile, "NUM_SMS": n_sms, "WARP_SPECIALIZE": True,
                        "FLATTEN": True},
            tiles={"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk},
            num_warps=warps, num_stages=stages, k_steps=-(-k // bk),
        ))
    return out


# ----------------------------------------------------------------------------------------------
# Compile and measure
# ----------------------------------------------------------------------------------------------

@dataclass
class AnchorResult:
    anchor: Anchor
    arch: int
    error: str | None = None
    registers: int | None = None
    spills: int | None = None
    block_warps: int | None = None
    efficiency: dict | None = None

    def row(self) -> str:
        a = self.anchor
        if self.error:
            return f"{a.name:<62} {a.config:<40} sm_{self.arch}  error: {self.error}"
        from kernels.audit.efficiency import Efficiency

        cell = Efficiency(**{k: (tuple(v) if k == "partitions" else v)
                             for k, v in self.efficiency.items()}).cell()
        return (f"{a.name:<62} {a.config:<40} sm_{self.arch}  regs={self.registers} spills={self.spills} "
                f"warps={self.block_warps}  {cell}")


def _signature(fn, anchor: Anchor) -> tuple[dict, dict, tuple[str, ...]]:
    """The JIT's specialisation of ``fn`` for the anchor's arguments; tensor descriptors get the type
    string Triton's JIT gives them (``tensordesc<fp16[128, 128]>``)."""
    from triton.runtime.jit import mangle_type
    from triton.tools.tensor_descriptor import TensorDescriptor

    from kernels._lib.aot import jit_specialisation

    plain = {k: v for k, v in anchor.args.items() if not isinstance(v, TensorDescriptor)}
    descs = {k: v for k, v in anchor.args.items() if isinstance(v, TensorDescriptor)}

    # jit_specialisation over the non-descriptor arguments, in the kernel's order
    rest = SimpleNamespace(arg_names=[n for n in fn.arg_names if n not in descs], __name__=anchor.fn_name)
    sig, consts, divisible = jit_specialisation(rest, plain, anchor.constexprs)
    signature = {n: (mangle_type(descs[n]) if n in descs else sig[n]) for n in fn.arg_names}
    return signature, consts, divisible


def measure(anchor: Anchor, module, arch: int) -> AnchorResult:
    """Compile ``anchor`` from the extracted tutorial ``module`` for ``sm_<arch>`` and read its loop."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from kernels.audit.compile import _error_text
    from kernels.audit.efficiency import efficiency
    from kernels.audit.occupancy import LIMITS
    from kernels.audit.sass import dump_cubin, parse_resource_usage, parse_sass

    result = AnchorResult(anchor, arch)
    fn = getattr(module, anchor.fn_name, None)
    if fn is None:
        result.error = f"the tutorial has no @triton.jit function {anchor.fn_name}"
        return result
    signature, consts, divisible = _signature(fn, anchor)
    names = list(fn.arg_names)
    attrs = {(names.index(n),): [["tt.divisibility", 16]] for n in divisible}
    try:
        compiled = triton.compile(
            ASTSource(fn=fn, signature=signature, constexprs=consts, attrs=attrs),
            target=GPUTarget(*LIMITS[arch].gpu_target),
            options={"num_warps": anchor.num_warps, "num_stages": anchor.num_stages, **anchor.options})
    except Exception as exc:  # a compile failure is a finding
        result.error = _error_text(exc)
        return result
    dump = dump_cubin(compiled.asm["cubin"])
    usage = [u for u in parse_resource_usage(dump) if u.function == compiled.metadata.name]
    sass = parse_sass(dump)
    result.registers = usage[0].registers if usage else None
    result.spills = sass.count("LDL") + sass.count("STL")
    result.block_warps = int(getattr(compiled.metadata, "num_warps", anchor.num_warps))
    result.efficiency = efficiency(dump, kernel=anchor.kernel, variant=anchor.variant, dtype="fp16",
                                   constexprs=anchor.tiles, num_warps=anchor.num_warps,
                                   ttgir=compiled.asm.get("ttgir", ""), k_steps=anchor.k_steps).to_dict()
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=" ".join(__doc__.split("\n\n")[0].split()))
    p.add_argument("--tutorials", type=Path, default=None, metavar="DIR",
                   help=f"directory with {ATTENTION_FILE} and {MATMUL_FILE} (default: ${TUTORIALS_ENV}, "
                        "else ~/.cache/ridgebench/triton-tutorials)")
    p.add_argument("--arch", type=int, default=100, help="compute capability (default 100)")
    p.add_argument("--only", choices=("attention", "matmul"), default=None, help="one of the two anchors")
    args = p.parse_args(argv)

    import triton
    from triton.language import standard
    from triton.runtime.jit import JITFunction

    from kernels.audit.occupancy import LIMITS

    if args.arch not in LIMITS:
        p.exit(2, f"{PROG}: error: --arch: expected one of {list(LIMITS)}, got {args.arch}\n")
    tutorials = args.tutorials or default_tutorials_dir()
    wanted = [(ATTENTION_FILE, attention_anchors), (MATMUL_FILE, matmul_anchors)]
    if args.only:
        wanted = [wanted[0 if args.only == "attention" else 1]]
    missing = [f for f, _ in wanted if not (tutorials / f).is_file()]
    if missing:
        print(f"{PROG}: skipped: {', '.join(missing)} not in {tutorials} (copy them from python/tutorials/ "
              f"of a Triton checkout matching triton {triton.__version__}, or pass --tutorials DIR)")
        return 0
    if not isinstance(standard.cdiv, JITFunction):
        p.exit(2, f"{PROG}: error: TRITON_INTERPRET=1 is set; run with TRITON_INTERPRET=0\n")
    source = tutorials / "SOURCE"
    print(f"triton {triton.__version__}; tutorials from {tutorials}"
          + (f" ({source.read_text().strip()})" if source.is_file() else ""))
    for file, anchors in wanted:
        module = load_jit_module(tutorials / file, tutorials)
        for anchor in anchors():
            print(measure(anchor, module, args.arch).row(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
