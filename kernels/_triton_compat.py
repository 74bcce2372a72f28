"""A guarded workaround for one Triton interpreter bug, so triton 3.6 (the version torch 2.11 pins)
runs this project's interpreter tests with numpy >= 2.4.

The bug: triton < 3.7's interpreter implements ``tensor.__index__`` as ``int(handle.data)``. For a loop
bound such as ``range(<runtime value>)`` that data is a 1-element array, and numpy 2.4 refuses
``int()`` on arrays that are not 0-dimensional ("only 0-dimensional arrays can be converted to Python
scalars"), so every kernel with a runtime loop bound fails. Fixed upstream in 3.7
(triton-lang/triton#9172) by squeezing the array first; :func:`apply` installs that same fix.

Guarded: it changes nothing on triton >= 3.7, and what it patches (the interpreter's per-launch
``_patch_lang_tensor``) only ever runs under ``TRITON_INTERPRET=1``, so compiled launches never see it.
"""

from __future__ import annotations

import functools
import re

FIXED_IN = (3, 7)


def version_tuple(version: str) -> tuple[int, int]:
    """``"3.6.0"`` / ``"3.7.0+git1234"`` -> ``(3, 6)`` / ``(3, 7)``; ValueError for anything else."""
    match = re.match(r"(\d+)\.(\d+)", version)
    if not match:
        raise ValueError(f"version: expected a version like '3.6.0', got {version!r}")
    return int(match.group(1)), int(match.group(2))


def needs_index_fix(triton_version: str) -> bool:
    """True for the triton releases whose interpreter has the ``int()`` on a 1-element array bug."""
    return version_tuple(triton_version) < FIXED_IN


def apply() -> bool:
    """Install the upstream fix on triton < 3.7; return True when it was installed (idempotent)."""
    import triton

    if not needs_index_fix(triton.__version__):
        return False
    try:
        from triton.runtime import interpreter
    except ImportError:  # an interpreter-less build: nothing to fix
        return False
    original = getattr(interpreter, "_patch_lang_tensor", None)
    if original is None:
        return False
    if getattr(original, "_ridgebench_index_fix", False):
        return True

    @functools.wraps(original)
    def patch_lang_tensor(tensor, scope):
        original(tensor, scope)
        # What triton 3.7 does: a scalar is a 1-element array here; squeeze it to 0-d before int().
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.squeeze()))

    patch_lang_tensor._ridgebench_index_fix = True  # type: ignore[attr-defined]
    interpreter._patch_lang_tensor = patch_lang_tensor
    return True
