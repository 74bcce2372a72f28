"""Tests run every Triton kernel under the interpreter on CPU tensors.

Triton decides interpreter-or-compiler when ``@triton.jit`` decorates, so the variable is set here,
before any test module imports a kernel. The static sm_80/sm_90 audit needs the compiler, so it runs
in a subprocess with the interpreter off (see tests/test_audit*.py).
"""

import os

os.environ["TRITON_INTERPRET"] = "1"
