"""Root conftest: plain ``pytest`` runs the tests in tests/; ``pytest --benchmark`` runs the benchmark
suite in bench/ instead (pytest-benchmark's own ``--benchmark-*`` options keep working)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent

# The benchmark suite's hooks and options (inert without --benchmark). A plugin rather than
# bench/conftest.py: a conftest below the root is not loaded at start-up for every command line (an
# option value such as `--sweep full` hides the testpaths), and the xdist controller never collects.
pytest_plugins = ("bench.plugin",)


def pytest_addoption(parser) -> None:
    parser.addoption(
        "--benchmark",
        action="store_true",
        default=False,
        help="ridgebench: run the benchmark suite in bench/ instead of the tests in tests/",
    )
    # Here rather than in tests/conftest.py so `pytest --device cuda` parses whatever the arguments
    # (tests/conftest.py reads it; see there).
    parser.addoption(
        "--device",
        choices=("cuda", "cpu"),
        default=None,
        help="ridgebench tests: where the Triton kernels run: cuda (compiled; the default when a GPU is "
             "visible) or cpu (the Triton interpreter on CPU tensors; the default otherwise)",
    )


def pytest_ignore_collect(collection_path: Path, config) -> bool | None:
    benchmarking = config.getoption("--benchmark")
    try:
        top = collection_path.resolve().relative_to(ROOT).parts[:1]
    except ValueError:
        return None
    if top == ("bench",) and not benchmarking:
        return True
    if top == ("tests",) and benchmarking:
        return True
    return None
