"""The machine a run decides for, and the one seam that forces it: ``RIDGEBENCH_MACHINE``.

ridgebench branches on the machine in a few places: the GPU architecture (a launcher's variant and
config pruning, e.g. QKV's TMA path from sm_90), the CPU's native bf16 (the CPU sweep's dtype) and
whether CUDA is there (per-family isolation of a benchmark run). Each of those reads the facts through
:func:`forced` first, so a test, or CI, can run the code of another machine here:

    RIDGEBENCH_MACHINE=cpu-fp32 ./scripts/test.sh    # as on a CPU without native bf16
    RIDGEBENCH_MACHINE=cpu-bf16 ./scripts/test.sh    # as on a CPU with native bf16 (the GPU's sweep dtype)
    RIDGEBENCH_MACHINE=sm90 pytest tests/test_qkv.py # launch plans as on an H100 (kernels interpreted)
    RIDGEBENCH_MACHINE=mi300x pytest tests/test_attention_api.py  # as on an MI300X (gfx942, HIP configs)

What is forced is the *decision*, never a measurement: a forced ``cpu-bf16`` sweeps in bf16 on any CPU,
but the CPU's roofs still come from its real flags (bf16 is then judged against the fp32 roof, as on
any CPU without native bf16); a forced ``sm90`` plans launches for sm_90 and isolates each kernel
family, while the tensors, the timing and the providers that can run stay those of the real device.
Provenance records the forced machine (``machine_forced``), and the sweep dtype's reason names it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ENV = "RIDGEBENCH_MACHINE"


@dataclass(frozen=True)
class Machine:
    """The facts ridgebench branches on. ``arch``: the CUDA compute capability ``10*major + minor``, or an
    AMD target (``"gfx942"``: its launch plans pick the HIP configs) (None: a CPU); ``native_bf16``: a CPU
    multiplies bf16 natively (None: a GPU, where it always does)."""

    name: str
    arch: int | str | None = None
    native_bf16: bool | None = None

    @property
    def is_gpu(self) -> bool:
        return self.arch is not None

    @property
    def sweep_dtype(self) -> str:
        """The dtype the sweep runs in on this machine (a GPU and a native-bf16 CPU: bf16)."""
        return "bfloat16" if self.is_gpu or self.native_bf16 else "float32"


# Every machine we target; tests that depend on the machine run for each of them.
MACHINES: dict[str, Machine] = {
    "cpu-fp32": Machine("cpu-fp32", native_bf16=False),
    "cpu-bf16": Machine("cpu-bf16", native_bf16=True),
    "sm80": Machine("sm80", arch=80),
    "sm90": Machine("sm90", arch=90),
    # AMD Instinct (issue 24): launch plans as on an MI300X/MI325X (gfx942) and an MI355X (gfx950)
    "mi300x": Machine("mi300x", arch="gfx942"),
    "mi355x": Machine("mi355x", arch="gfx950"),
}
CPU_MACHINES = tuple(n for n, m in MACHINES.items() if not m.is_gpu)
GPU_MACHINES = tuple(n for n, m in MACHINES.items() if m.is_gpu)


class MachineError(ValueError):
    """``RIDGEBENCH_MACHINE`` names no machine we target."""


def forced(environ: dict | None = None) -> Machine | None:
    """The machine ``RIDGEBENCH_MACHINE`` forces, or None when it is unset or empty.

    Raises :class:`MachineError` naming the variable and the choices for any other value."""
    value = (os.environ if environ is None else environ).get(ENV, "").strip()
    if not value:
        return None
    try:
        return MACHINES[value]
    except KeyError:
        raise MachineError(f"{ENV}={value!r}: expected one of {', '.join(MACHINES)} "
                           "(or unset for this machine)") from None


def forced_arch(environ: dict | None = None) -> int | str | None:
    """The GPU architecture a forced GPU machine plans for; None when none is forced (or a CPU is)."""
    machine = forced(environ)
    return machine.arch if machine is not None else None


def describe(environ: dict | None = None) -> str | None:
    """``"RIDGEBENCH_MACHINE=sm90 (forced)"`` for provenance and reasons; None when nothing is forced."""
    machine = forced(environ)
    return None if machine is None else f"{ENV}={machine.name} (forced)"
