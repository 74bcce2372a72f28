"""scripts/gpu-check.sh's Python steps, one module so the shell script holds only the plan:

    python scripts/gpu_check_summary.py --versions FILE   # step 1: versions and device properties
    python scripts/gpu_check_summary.py --report ROOT     # step 5: roofline and claims of ROOT's run
    python scripts/gpu_check_summary.py OUT DRY           # the summary's details (DRY: 1 or 0)

The report step reads the run the sweep step left under ROOT (``<device>/<timestamp>/``), finished or
cut short (then from its ``parts/``), as ``python -m roofline plot`` and ``claims`` do.
"""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a file (python scripts/...), so the project is not on the path

from roofline.rundir import BENCHMARK, PROVENANCE, SKIPPED  # noqa: E402


def versions(path: Path) -> int:
    import torch

    doc = {"python": sys.version.split()[0], "platform": platform.platform(), "torch": torch.__version__,
           "cuda_runtime": torch.version.cuda, "hip_runtime": getattr(torch.version, "hip", None),
           "cuda_available": torch.cuda.is_available()}
    for dist in ("triton", "numpy", "matplotlib", "pytest", "pytest-benchmark", "pytest-xdist",
                 "nvidia-ml-py"):
        try:
            doc[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            doc[dist] = None
    try:
        doc["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                           cwd=ROOT).stdout.strip()
    except OSError:
        doc["git_commit"] = None
    from bench.rocm import gcn_arch

    doc["devices"] = []
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        doc["devices"].append({"index": i, "name": p.name, "capability": f"{p.major}.{p.minor}",
                               "gcn_arch": gcn_arch(p),  # ROCm: "gfx942"; None on NVIDIA
                               "sm_count": p.multi_processor_count, "memory_bytes": p.total_memory,
                               "l2_bytes": getattr(p, "L2_cache_size", None)})
    path.write_text(json.dumps(doc, indent=2))
    print(json.dumps(doc, indent=2))
    return 0


def find_run(root: Path) -> Path | None:
    """The newest run directory under ``root`` (``<device>/<timestamp>/``), finished or not."""
    runs = sorted((p for p in root.glob("*/*") if p.is_dir()), key=lambda p: p.name)
    return runs[-1] if runs else None


def report(root: Path) -> int:
    """The run's plots, claims and report.html, by the suite's own end-of-run step
    (:func:`roofline.report.finish.finish`); exit 1 when any of them failed."""
    from roofline.report.finish import finish

    run = find_run(root)
    if run is None:
        print(f"gpu-check: no run directory under {root}: the sweep timed nothing")
        return 1
    print(f"run: {run}")
    lines = finish(run).reports
    print(*lines, sep="\n")
    return 1 if any("FAILED" in line or "not available" in line for line in lines) else 0


def details(out: Path, dry: bool) -> None:
    v = json.loads((out / "versions.json").read_text()) if (out / "versions.json").is_file() else {}
    dev = ", ".join(f"{d['name']} (sm_{d['capability'].replace('.', '')}, {d['sm_count']} SMs)"
                    for d in v.get("devices", [])) or "no GPU"
    print(f"device: {dev}; torch {v.get('torch')} (CUDA {v.get('cuda_runtime')}), triton {v.get('triton')}")
    print("configs: each launcher's first surviving config (RIDGEBENCH_AUTOTUNE=0, to fit the boxes); "
          "./scripts/bench.sh autotunes")
    xml = out / "compiled-tests.xml"
    if xml.is_file():
        suite = ET.parse(xml).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        a = suite.attrib
        print(f"compiled tests: {a.get('tests')} collected, {a.get('failures')} failed, {a.get('errors')} "
              f"errors, {a.get('skipped')} skipped, {float(a.get('time', 0)):.0f}s")
    else:
        print("compiled tests: no JUnit report (the step did not reach its end)")
    txt = out / "crosscheck" / "crosscheck.txt"
    if txt.is_file():
        keep = ("bandwidth", "HOST TIME IN EVENTS", "event clocks agree", "LAUNCH:", "DISAGREE",
                "do_bench agrees", "NOT COVERED", "dry run")
        print(*[line for line in txt.read_text().splitlines() if line.startswith(keep)], sep="\n")
    run = find_run(out / "bench")
    if run is not None:
        prov = _load(run / PROVENANCE)
        if isinstance(prov, dict):
            families = prov.get("families") or {}
            if families:
                states = {f: s.get("exit_status") for f, s in families.items()}
                print("kernel families: " + ", ".join(
                    f"{f} ok" if rc in (0, 5) else f"{f} FAILED (exit {rc})" for f, rc in states.items()))
            if prov.get("interrupted"):
                print("sweep: INTERRUPTED (its time box); the finished benchmarks are kept")
        bench = _load(run / BENCHMARK)
        if isinstance(bench, dict):
            print(f"timed benchmarks: {len(bench.get('benchmarks', []))}")
        skipped = _load(run / SKIPPED)
        if isinstance(skipped, list):
            cats: dict[str, int] = {}
            for s in skipped:
                cats[s.get("category", "?")] = cats.get(s.get("category", "?"), 0) + 1
            print(f"skipped cases: {cats or 'none'}")
        claims = run / "claims.md"
        if claims.is_file():
            verdicts = re.findall(r"\b(supported|refuted|inconclusive)\b", claims.read_text())
            counts = {k: verdicts.count(k) for k in ("supported", "refuted", "inconclusive")}
            print(f"claims: {claims} (verdict words in it: {counts})")
    else:
        print("sweep: no run directory")
    if dry:
        print("DRY RUN: plumbing only, nothing here was measured on a GPU")


def _load(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--versions":
        return versions(Path(argv[1]))
    if len(argv) == 2 and argv[0] == "--report":
        return report(Path(argv[1]))
    if len(argv) == 2 and argv[1] in ("0", "1"):
        details(Path(argv[0]), argv[1] == "1")
        return 0
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
