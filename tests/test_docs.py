"""The documentation stays true: every shell command in a ``bash`` block of README.md and docs/*.md runs (in
the shortened form ``HOW`` gives it), a command marked ``# GPU`` is checked for its flags only, and every
flag, environment variable, file and link the docs name exists. No topic of the old one-page README was
lost (``OLD_HEADINGS``).

Convention: a trailing ``# GPU`` (or ``# GPU: why``) comment marks a command that needs a GPU.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
STORED_RUN = ROOT / "tests" / "data" / "cpu-quick"
EXAMPLE_OP = "rmsnorm"  # docs/adding-a-kernel.md's example: no such op yet

# Every non-GPU command of the docs, and how the test runs it: ("run", the command actually run:
# {run} = a copy of the stored CPU run, {run2} = a second copy, {tmp} = a scratch folder), or
# ("flags", why it is not run). A run keeps the documented command's program and flags. COLLECT: run
# as far as pytest's collection: the options parsed and checked, the sweep (or the model step) built
COLLECT = ("run", "{command} --collect-only -q")

HOW: dict[str, tuple[str, str]] = {
    "./scripts/bench.sh": (
        "run", "./scripts/bench.sh --sweep smoke --kernels softmax --ceilings-budget 0.05 "
               "--benchmark-max-time 0.05 --results-root={tmp}/r"),
    "./scripts/test.sh": ("run", "./scripts/test.sh --collect-only -q tests/test_docs.py"),
    "./scripts/bench.sh --sweep full": COLLECT,
    "./scripts/bench.sh --kernels gemv,qkv": COLLECT,
    "./scripts/bench.sh --providers triton": COLLECT,
    "./scripts/bench.sh --results-root=/data/rb": (
        "run", "./scripts/bench.sh --results-root={tmp}/r --collect-only -q"),
    "RIDGEBENCH_MACHINE=cpu-fp32 ./scripts/test.sh": (
        "run", "RIDGEBENCH_MACHINE=cpu-fp32 ./scripts/test.sh --collect-only -q tests/test_qkv.py"),
    "RIDGEBENCH_MACHINE=sm90 pytest tests/test_qkv.py tests/test_attention_api.py": COLLECT,
    "RIDGEBENCH_MACHINE=mi300x pytest tests/test_qkv.py tests/test_attention_api.py": COLLECT,
    "./scripts/bench.sh --model gpt2-small --batch 1,4,16 --context 256": COLLECT,
    "./scripts/bench.sh --model=my-config.json --batch 1,8 --context 2048": (
        "run", "./scripts/bench.sh --model={tmp}/my-config.json --batch 1,8 --context 2048 "
               "--collect-only -q"),
    "python -m roofline step RESULTS": ("flags", "needs a --model run (tests/test_step.py makes one)"),
    "python -m roofline step RESULTS --weights int8 --output-tokens 256": (
        "flags", "needs a --model run (tests/test_step.py makes one)"),
    "python -m kernels.audit": ("run", "python -m kernels.audit --kernel gelu --arch 80 --jobs 1 --quiet "
                                       "--json {tmp}/audit.json"),
    "python -m kernels.audit --kernel attention gemv --arch 90 --jobs 2": (
        "flags", "minutes of compiles; tests/test_audit.py compiles every case"),
    "python -m kernels.audit --arch 100 120": ("flags", "minutes of compiles; tests/test_audit.py"),
    "python -m kernels.audit --json audit.json --quiet": (
        "run", "python -m kernels.audit --kernel softmax --arch 120 --json {tmp}/audit.json --quiet"),
    "python -m kernels.audit --fresh": ("flags", "an empty Triton cache: minutes of compiles"),
    "python -m kernels.audit --arch gfx942 gfx950": (
        "run", "python -m kernels.audit --kernel gelu --arch gfx942 gfx950 --jobs 1 --quiet "
               "--json {tmp}/audit.json"),
    "python -m roofline claims --predict MI300X": (
        "run", "python -m roofline claims --predict MI300X --out {tmp}/claims.md"),
    "python -m roofline compare RUN_A RUN_B [--threshold 5%] [--out DIR] [--no-figure] [--allow-missing] "
    "[--strict]": ("run", "python -m roofline compare {run} {run2} --threshold 5% --out {tmp}/c --no-figure "
                          "--allow-missing --strict"),
    "python -m roofline report RUN": ("run", "python -m roofline report {run}"),
    "python -m roofline report RUN_A RUN_B [-o FILE]": (
        "run", "python -m roofline report {run} {run2} -o {tmp}/both.html"),
    "python -m roofline report results/<device>/": ("run", "python -m roofline report {tmp}/device/"),
    "python -m roofline report RUN... --history": (
        "run", "python -m roofline report {run} {run2} --history -o {tmp}/history.html"),
    "python -m roofline plot RESULTS [--out DIR]": ("run", "python -m roofline plot {run} --out {tmp}/plot"),
    "python -m roofline plot --predict A100-SXM4-80GB [--sweep quick|full]": (
        "run", "python -m roofline plot --predict A100-SXM4-80GB --sweep quick --out {tmp}/predict"),
    "python -m roofline claims [RESULTS] [--hardware PRESET] [--dtype bfloat16]": (
        "run", "python -m roofline claims {run} --hardware H100-SXM5 --dtype bfloat16"),
}

# Flags the docs name that belong to other tools (the venv, pip, pytest-benchmark extras), with where.
FOREIGN_FLAGS = {
    "--system-site-packages": "python -m venv",
    "--target": "pip install (docs/machines.md: where to put the PyPI kernels for the collision test)",
    "--min-speed": "pyperf compare_to (docs/compare.md contrasts it)",
    "--factor": "asv compare (docs/compare.md contrasts it)",
}

# The old one-page README's headings (before the manual moved to docs/), and where each lives now.
OLD_HEADINGS = {  # kept word for word, one level up on their own page
    "ridgebench": "README.md",
    "Two commands": "README.md",
    "The main job: `pytest --benchmark`": "docs/main-job.md",
    "On an A100 or H100": "docs/machines.md",
    "How timing is done": "docs/timing.md",
    "Providers: torch.compile, SDPA's backends, installed kernels and your own": "docs/providers.md",
    "A model step: `pytest --benchmark --model`": "docs/model-step.md",
    "The kernels": "docs/kernels.md",
    "Fused QKV projection (`kernels/qkv/`)": "docs/kernels.md",
    "Decode GEMV / skinny GEMM (`kernels/gemv/`)": "docs/kernels.md",
    "Attention over a KV cache: prefill, then decode (`kernels/attention/`)": "docs/kernels.md",
    "Softmax and GELU (`kernels/softmax/`, `kernels/gelu/`)": "docs/kernels.md",
    "The static audit: is each kernel ready for A100, H100, B200 and RTX 50? (checked without a GPU)":
        "docs/audit.md",
    "Roofline plots and the claims report": "docs/roofline-and-claims.md",
    "Comparing two runs: `python -m roofline compare`": "docs/compare.md",
    "One page to open and share: `report.html`": "docs/report-page.md",
    "Transformer accounting: `python -m roofline model` and `hardware`": "docs/accounting.md",
    "Counting conventions": "docs/accounting.md",
    "What ridgebench can and cannot tell you": "docs/machines.md",
    "Layout": "docs/adding-a-kernel.md",
    "Adding a kernel": "docs/adding-a-kernel.md",
}


@dataclass(frozen=True)
class Command:
    doc: str
    line: int
    text: str  # without its trailing comment
    gpu: bool


def fenced_lines(path: Path):
    """(language, line number, line) of every line inside a fenced block."""
    lang = None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("```"):
            lang = line[3:].strip() if lang is None else None
        elif lang is not None:
            yield lang, number, line


def bash_commands(paths=DOCS) -> list[Command]:
    commands, pending = [], ""
    for path in paths:
        for lang, number, line in fenced_lines(path):
            if lang != "bash" or not line.strip():
                continue
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            line, pending = pending + line, ""
            text, _, comment = _split_comment(line)
            commands.append(Command(str(path.relative_to(ROOT)), number, text,
                                    comment.lstrip().startswith("GPU")))
    return commands


def _split_comment(line: str) -> tuple[str, str, str]:
    match = re.search(r"\s+#\s?", line)
    if not match:
        return line.strip(), "", ""
    return line[: match.start()].strip(), "#", line[match.end():]


def _program(text: str) -> list[str]:
    """The command's words less leading VAR=value assignments."""
    words = shlex.split(text.split("&&")[0])
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
        words.pop(0)
    return words


def _flags(words: list[str]) -> list[str]:
    flags = []
    for word in words:
        word = word.strip("[]").removesuffix("...")
        if re.fullmatch(r"--?[A-Za-z][\w-]*(=.*)?", word):
            flags.append(word.split("=")[0])
    return flags


def script_env() -> dict[str, str]:
    """This python first on PATH; the scripts set up on this environment, never a .venv in the checkout.
    TRITON_INTERPRET is inherited: tests/conftest.py sets it for --device cpu and removes it for cuda."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    if sys.prefix != sys.base_prefix:  # a venv: the scripts reuse it (nothing to install)
        env["RIDGEBENCH_VENV"] = sys.prefix
    else:  # one venv for the session over this python's packages, as scripts/env.sh makes them
        env["RIDGEBENCH_VENV"] = _scratch_venv()
        env["PYTHON"] = sys.executable
    env.pop("PYTEST_ADDOPTS", None)
    return env


@lru_cache(maxsize=1)
def _scratch_venv() -> str:
    return str(Path(tempfile.mkdtemp(prefix="ridgebench-docs-")) / "venv")


def _run(args, timeout=300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=script_env(), capture_output=True, text=True, timeout=timeout,
                          **kw)


@lru_cache(maxsize=None)
def help_text(tool: tuple[str, ...]) -> str:
    proc = _run([*tool, "--help"], timeout=120)
    assert proc.returncode == 0, (tool, proc.stderr[-2000:])
    return proc.stdout


def tool_of(words: list[str]) -> tuple[str, ...] | None:
    """The command whose --help lists this command's flags (None: not ridgebench's)."""
    py = sys.executable
    if words[0] in ("./scripts/bench.sh", "./scripts/test.sh", "pytest"):
        return (py, "-m", "pytest", "-p", "no:cacheprovider")
    if words[:3] == ["python", "-m", "roofline"]:
        return (py, "-m", "roofline", words[3])
    if words[:3] == ["python", "-m", "kernels.audit"]:
        return (py, "-m", "kernels.audit")
    if words[:3] == ["python", "-m", "kernels.audit.anchors"]:
        return (py, "-m", "kernels.audit.anchors")
    if words[0] == "./scripts/gpu-check.sh":
        return ("bash", "scripts/gpu-check.sh")
    return None


def flag_in_help(flag: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text) is not None


def all_help() -> str:
    py = sys.executable
    tools = [tool_of(["pytest"]), (py, "-m", "roofline"), (py, "-m", "kernels.audit"),
             (py, "-m", "kernels.audit.anchors"),
             ("bash", "scripts/gpu-check.sh"), (py, "scripts/timing_crosscheck.py")]
    subcommands = ("hardware", "model", "plot", "claims", "step", "compare", "report")
    tools += [(py, "-m", "roofline", sub) for sub in subcommands]
    return "\n".join(help_text(t) for t in tools)


COMMANDS = bash_commands()


def test_the_docs_have_commands_and_each_unmarked_one_is_in_the_table():
    assert len(COMMANDS) > 20
    unmarked = {c.text for c in COMMANDS if not c.gpu and tool_of(_program(c.text)) is not None}
    missing = sorted(unmarked - HOW.keys())
    assert not missing, f"documented commands with no entry in tests/test_docs.py HOW: {missing}"
    stale = sorted(HOW.keys() - {c.text for c in COMMANDS})
    assert not stale, f"HOW entries no document has any more: {stale}"
    others = sorted({c.text for c in COMMANDS if tool_of(_program(c.text)) is None and not c.gpu})
    assert not others, f"commands of no ridgebench tool, unmarked: {others}"


@pytest.mark.parametrize("command", sorted({c.text for c in COMMANDS if tool_of(_program(c.text))}))
def test_every_documented_flag_exists(command):
    words = _program(command)
    tool = tool_of(words)
    text = help_text(tool)
    unknown = [f for f in _flags(words) if not flag_in_help(f, text)]
    where = [f"{c.doc}:{c.line}" for c in COMMANDS if c.text == command]
    assert not unknown, f"{where}: {unknown} not in `{' '.join(tool[1:])} --help`"


@pytest.mark.parametrize("command", sorted(k for k, (mode, _) in HOW.items() if mode == "run"))
def test_documented_command_runs(command, tmp_path):
    run_a, run_b = tmp_path / "runA", tmp_path / "runB"
    shutil.copytree(STORED_RUN, run_a)
    shutil.copytree(STORED_RUN, run_b)
    shutil.copytree(STORED_RUN, tmp_path / "device" / "20261201T000000Z")
    (tmp_path / "my-config.json").write_text(
        '{"name": "tiny", "d_model": 256, "n_layers": 2, "n_heads": 4, "n_kv_heads": 4, "d_ff": 1024, '
        '"vocab_size": 1000, "context_length": 4096}')
    actual = HOW[command][1].format(command=command, run=run_a, run2=run_b, tmp=tmp_path)
    doc_words, run_words = _program(command), _program(actual)
    assert run_words[: len(doc_words[:1])] == doc_words[:1]
    assert set(_flags(doc_words)) <= set(_flags(run_words)), "the run drops a documented flag"
    proc = _run(["bash", "-c", actual.replace("python ", f"{sys.executable} ", 1)
                 if actual.startswith("python ") else actual], timeout=600)
    assert proc.returncode == 0, f"{actual}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    if command == "./scripts/bench.sh":  # what a run leaves behind (the README's table)
        (run,) = (tmp_path / "r").glob("*/*/")
        for name in ("report.html", "claims.md", "benchmark.json", "ceilings.json", "provenance.json",
                     "skipped.json"):
            assert (run / name).is_file(), name
        assert list(run.glob("roofline-*.png")) and list(run.glob("roof-fraction-*.png"))


DOC_TEXT = {p: p.read_text() for p in DOCS}


def test_every_flag_the_docs_name_exists():
    text = all_help()
    named = set()
    for path, doc in DOC_TEXT.items():
        prose = "\n".join(line for lang, _, line in fenced_lines(path) if lang == "python")
        for flag in re.findall(r"(?<![\w/-])--[a-z][\w-]*", doc):
            if flag not in prose:
                named.add((flag, path.name))
    unknown = sorted((f, d) for f, d in named if f not in FOREIGN_FLAGS and not flag_in_help(f, text))
    assert not unknown, f"flags the docs name that no ridgebench tool has: {unknown}"


def test_every_environment_variable_the_docs_name_is_read_by_the_code():
    code = "\n".join(p.read_text(errors="replace") for p in ROOT.rglob("*")
                     if (p.suffix in (".py", ".sh") or p.parent.name == ".ci") and ".venv" not in p.parts
                     and p.is_file()
                     and p.name != "test_docs.py")
    for path, doc in DOC_TEXT.items():
        for var in set(re.findall(r"\bRIDGEBENCH_[A-Z_]+\b", doc)):
            assert var in code, f"{path.name}: {var} is read nowhere"


def test_every_file_and_link_the_docs_name_exists():
    roots = ("kernels/", "bench/", "roofline/", "scripts/", "tests/", "docs/", ".ci/")
    missing = []
    for path, doc in DOC_TEXT.items():
        for span in re.findall(r"`([^`\n]+)`", doc):
            for word in span.split():
                word = word.strip("(),;:")
                # placeholders (<op>, *, {x}, ...) and the recipe's example op name no real file
                if (word.startswith(roots) and not re.search(r"[<>*{}]|\.\.\.", word)
                        and EXAMPLE_OP not in word and not (ROOT / word.split("::")[0]).exists()):
                    missing.append(f"{path.name}: `{word}`")
        for target in re.findall(r"\]\(([^)\s]+)\)", re.sub(r"`[^`\n]+`", "", doc)):
            if target.startswith(("http://", "https://")):
                continue
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if not dest.exists():
                missing.append(f"{path.name}: link {target}")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest.read_text()):
                missing.append(f"{path.name}: link {target} (no such heading)")
    assert not missing, missing


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces to hyphens."""
    heads = [line.lstrip("#").strip() for lang, line in _heading_lines(markdown)]
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in heads}


def _heading_lines(markdown: str):
    fence = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and re.match(r"#{1,6} ", line):
            yield None, line


def test_no_topic_of_the_old_readme_was_lost():
    for heading, doc in OLD_HEADINGS.items():
        heads = {line.lstrip("#").strip() for _, line in _heading_lines((ROOT / doc).read_text())}
        assert heading in heads, f"old README section {heading!r}: no such heading in {doc}"


def test_the_readme_is_short_and_has_its_figure():
    readme = DOC_TEXT[ROOT / "README.md"]
    assert len(readme.splitlines()) <= 150
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert figures and all((ROOT / f).is_file() for f in figures)
    for page in sorted((ROOT / "docs").glob("*.md")):
        if page.name != "amd.md":  # written elsewhere; the lead links it
            assert f"(docs/{page.name})" in readme, f"README does not link docs/{page.name}"
