"""ridgebench's Triton kernels, one package per op (``kernels/<op>/``), each with the same slots:

- ``__init__.py``: the public, typed launcher(s), ``VARIANTS`` (``{name: launcher}``), ``<op>_ref`` (the
  PyTorch reference, computed in fp32/float64 and cast back) and ``TOLERANCES`` (``{dtype: (atol, rtol)}``);
- ``kernels.py``: the ``@triton.jit`` functions only (attention: ``prefill.py`` and ``decode.py`` hold each
  stage's kernel and launch, sharing the KV-tile loop in ``kernels.py``);
- ``configs.py``: ``KERNEL`` (the op's name in launch records and compile cases), configs, pruning
  and the launch plan;
- ``cases.py``: ``compile_cases(arch)`` for the sm_80/sm_90 audit, ``REQUIRED_GATES`` and
  ``GATE_EXCEPTIONS`` (each waiver with its reason);
- ``spec.py``: ``SPEC`` (:class:`kernels._lib.spec.OpSpec`), what the benchmark, the providers, the
  validation and compiled tests and the timing cross-check need to know about the op;
- ``DESIGN.md``: design targets, risks, and how to read the audit's evidence.

``kernels/_lib`` holds the one copy of what they share. The list of ops is :data:`roofline.model.ops.KERNELS`;
docs/adding-a-kernel.md is the recipe.
"""

# triton < 3.7's interpreter fails with numpy >= 2.4; installs the upstream fix there (no-op otherwise).
from kernels import _triton_compat

_triton_compat.apply()
