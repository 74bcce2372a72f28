"""``--model/--batch/--context/--prefill``: the plugin's model-step mode, kept out of ``bench/plugin.py``
apart from one call per hook.

With ``--model`` the suite's kernels run at the shapes of one decode step of that model per batch
(and one prefill with ``--prefill``) from :func:`roofline.model.step.step_points` instead of a ``--sweep``
preset; the request is saved as ``step-request.json`` in the run directory and the step report
(``step.md``, ``step.json``, figures) is written when the session ends (:mod:`bench.finish`).
``--weights``, ``--activations``, ``--kv`` and ``--group-size`` (parsed as ``python -m roofline model``
parses them) are recorded in the request: the kernels still run the run's dtype, and the report PREDICTS
the step in that precision.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from roofline.errors import UsageError
from roofline.model.precision import precision_options
from roofline.model.step import (
    DEFAULT_CONTEXT,
    StepRequest,
    check_fits_cpu,
    check_fits_memory,
    make_request,
    step_points,
    write_request,
)
from roofline.model.sweeps import SweepPoint, sweep_dtype

REQUEST = pytest.StashKey[StepRequest]()


def add_options(group) -> None:
    group.addoption("--model", default=None, metavar="PRESET|CONFIG.json",
                    help="benchmark one decode step of this model (a roofline.model.transformer preset or a "
                         "config "
                         "JSON: write --model=PATH so pytest does not take PATH for a test path) instead "
                         "of a --sweep preset; writes step.md/step.json")
    group.addoption("--batch", default="1,8,64,256", metavar="B1,B2",
                    help="with --model: decode batches (default 1,8,64,256)")
    group.addoption("--context", default=None, metavar="TOKENS",
                    help=f"with --model: cached tokens per sequence, and the prefill length (default "
                         f"{DEFAULT_CONTEXT}, or the model's context length if smaller); past the model's "
                         "context length only with --allow-long-context")
    group.addoption("--allow-long-context", action="store_true", default=False,
                    help="with --model: allow --context past the model's context length (its positions)")
    group.addoption("--prefill", action="store_true", default=False,
                    help="with --model: also one prefill of --context tokens")
    for option, help_text in precision_options("the run's --dtype").items():
        group.addoption(option, default=None,
                        help=f"with --model: {help_text}; the kernels run the run's dtype only, so the step "
                             "report PREDICTS the step in this precision (never measured)")


PRECISION_OPTIONS = tuple(precision_options(""))


def configure(config: pytest.Config, cuda: bool) -> None:
    """Parse and check the request (a bad one is a usage error) and keep it in the config's stash."""
    if config.getoption("--model") is None:
        given = [o for o in PRECISION_OPTIONS if config.getoption(o) is not None]
        if given:
            raise pytest.UsageError(f"{given[0]}: only with --model (it sets the precision a model step "
                                    "is predicted in)")
        return
    try:
        dtype, _ = sweep_dtype("cuda" if cuda else "cpu", config.getoption("--dtype"))
        request = make_request(config.getoption("--model"), config.getoption("--batch"),
                               config.getoption("--context"), config.getoption("--prefill"), dtype,
                               allow_long_context=config.getoption("--allow-long-context"),
                               weights=config.getoption("--weights"),
                               activations=config.getoption("--activations"), kv=config.getoption("--kv"),
                               group_size=config.getoption("--group-size"))
        if not cuda:
            check_fits_cpu(request)
        check_fits_memory(request, *device_memory(cuda))
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    config.stash[REQUEST] = request


def device_memory(cuda: bool) -> tuple[float, str]:
    """``(bytes, what)``: GPU 0's total memory, or the host's available memory (``MemAvailable``)."""
    if cuda:
        import torch

        props = torch.cuda.get_device_properties(0)
        return float(props.total_memory), f"memory on {props.name}"
    return float(host_available_bytes()), "host memory available (MemAvailable)"


def host_available_bytes(meminfo: str = "/proc/meminfo") -> int:
    """``MemAvailable`` from ``/proc/meminfo`` (bytes); without it, the physical memory."""
    try:
        for line in Path(meminfo).read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def save_request(config: pytest.Config, run_dir: Path) -> None:
    """The controller saves the request as ``step-request.json`` beside the run's results."""
    request = config.stash.get(REQUEST, None)
    if request is not None:
        write_request(run_dir, request)


def sweep_name(config: pytest.Config) -> str:
    """What the provenance records as the sweep: ``--sweep``, or ``model:<name>`` for a model-step run."""
    request = config.stash.get(REQUEST, None)
    return config.getoption("--sweep") if request is None else f"model:{request.model.name}"


def points(config: pytest.Config) -> list[SweepPoint] | None:
    """The model step's points, or None when ``--model`` was not given (use the sweep preset)."""
    request = config.stash.get(REQUEST, None)
    return None if request is None else step_points(request)


def report_commands(config: pytest.Config, run_dir: Path) -> list[str]:
    """The commands that draw this mode's reports later (what an interrupted run's summary names)."""
    return [] if config.stash.get(REQUEST, None) is None else [f"python -m roofline step {run_dir}"]


def requested(config: pytest.Config) -> bool:
    """Whether this is a model-step run: its step report is written at session end (:mod:`bench.finish`)."""
    return config.stash.get(REQUEST, None) is not None
