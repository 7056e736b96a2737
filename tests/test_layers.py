"""The two halves stay apart: what judges saved runs on any machine imports nothing from
what runs pipelines on a GPU (trtbench.gpu), nor torch or TensorRT; and a file of CPU unit
tests starts without paying for the GPU half."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# the judging half: saved runs, their comparison, reports, trends, the A/B gate and the command
JUDGING = [
    "catalogue",
    "cli",
    "compare",
    "correctness",
    "figures",
    "files",
    "ordering",
    "report",
    "runs",
    "settings",
    "stats",
    "trends",
    "ab",
    "checkouts",
    "readiness",
    "commands.compare",
    "commands.report",
    "commands.calibrate",
    "commands.ab",
    "commands.bisect",
    "commands.trends",
    "commands.prune",
    "commands.static_check",
]
FORBIDDEN = ("trtbench.gpu", "torch", "torchvision", "tensorrt", "fixtures")


@pytest.mark.parametrize("module", JUDGING)
def test_a_judging_module_imports_nothing_of_the_gpu_half(module):
    code = (
        f"import sys, trtbench.{module}; bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{[f.split('.')[0] for f in FORBIDDEN]!r} and (m.startswith({FORBIDDEN!r}) or m in {FORBIDDEN!r})); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, f"trtbench.{module} imports {done.stdout.strip()}{done.stderr[-300:]}"


def test_every_judging_module_is_listed():
    """A new module of trtbench/ (outside gpu/) is either judging code, listed above, or prepares a
    run (the model, its graphs, images, references, engines)."""
    preparing = {"model", "graphs", "images", "reference", "engines", "__init__", "__main__", "commands.__init__"}
    found = {
        str(p.relative_to(ROOT / "trtbench").with_suffix("")).replace("/", ".")
        for p in (ROOT / "trtbench").rglob("*.py")
        if "gpu" not in p.parts
    }
    assert found - preparing == set(JUDGING)


def test_the_trtbench_command_answers_help_quickly():
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "trtbench", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and "compare" in done.stdout and "ab" in done.stdout
    assert time.perf_counter() - start < 10  # the standard library only, until a subcommand is chosen


def test_a_file_of_unit_tests_starts_without_the_gpu_half(tmp_path):
    """The suite's plugin is loaded by every pytest run; a run of unit tests pays for nothing else."""
    probe = tmp_path / "test_probe.py"
    probe.write_text(
        "import sys\n\ndef test_nothing_heavy_loaded():\n"
        "    heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', "
        "'onnxruntime', 'tensorrt') or m.startswith('trtbench.gpu'))\n    assert not heavy, heavy\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(probe),
            "-q",
            "-p",
            "no:cacheprovider",
            f"--rootdir={ROOT}",
            "-c",
            str(ROOT / "pytest.ini"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-1500:]
