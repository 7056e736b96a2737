"""Type-check the TensorRT code against ``tensorrt-stubs`` (10.13 API) with mypy.

TensorRT cannot be installed on our machines, so this is how its calls are verified.
The stub package installs ``tensorrt/__init__.pyi`` without a ``py.typed`` marker, and
its generated ``tensorrt.pyi`` has a few syntax defects (parameters named ``in``, a
non-default parameter after defaults) that stop mypy; this copies the stubs, mends
exactly those, and runs mypy with them on ``MYPYPATH`` (configuration in
pyproject.toml).

    trtbench static-check                 # exit 0 clean, 1 type errors (printed), 2 stubs or mypy missing
    trtbench static-check -- --strict     # more arguments for mypy after --

It checks the suite's own sources, whichever folder it is run from.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import re
import shutil
import tempfile
from pathlib import Path

from trtbench.cli import EXIT_OK, EXIT_REGRESSION, Unusable

ACCEPTS_PASSTHROUGH = True  # arguments after -- go to mypy
STUB_PACKAGES = ("tensorrt", "tensorrt_bindings")
ROOT = Path(__file__).resolve().parents[2]


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise Unusable(f"{name} stubs not found: pip install --no-deps tensorrt-stubs==10.13.0.35.1")
    return Path(list(spec.submodule_search_locations)[0])


def mend(text: str) -> tuple[str, int]:
    """Fix the stub file's syntax defects; returns the text and how many fixes applied."""
    text, renamed = re.subn(r"(\bdef \w+\([^)]*?)\bin: ", r"\1in_: ", text)
    text, defaulted = re.subn(r"(= None, channel_axis: int)\)", r"\1 = ...)", text)
    return text, renamed + defaulted


def prepare_stubs(dest: Path) -> Path:
    fixes = 0
    for name in STUB_PACKAGES:
        source = _package_dir(name)
        if any(source.glob("*.py")) or any(source.glob("*.so")):
            raise Unusable(f"{source} is a real {name} install, not stubs: check against it directly")
        target = dest / name
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.pyc", "__pycache__"))
        for pyi in target.glob("*.pyi"):
            text, n = mend(pyi.read_text())
            pyi.write_text(text)
            fixes += n
    if fixes == 0:
        raise Unusable("no stub defect found to mend: the stubs changed; review trtbench/commands/static_check.py")
    return dest


def run_mypy(extra_args: list[str] | None = None) -> tuple[str, int]:
    try:
        from mypy import api
    except ImportError:
        raise Unusable("mypy is not installed: the set-up command of README installs it") from None

    with tempfile.TemporaryDirectory() as tmp:
        stubs = prepare_stubs(Path(tmp))
        old = os.environ.get("MYPYPATH")
        os.environ["MYPYPATH"] = str(stubs)
        try:
            with contextlib.chdir(ROOT):  # pyproject.toml names the files to check relative to the root
                out, err, status = api.run(
                    ["--config-file", str(ROOT / "pyproject.toml"), "--no-incremental", *(extra_args or [])]
                )
        finally:
            if old is None:
                os.environ.pop("MYPYPATH", None)
            else:
                os.environ["MYPYPATH"] = old
    return out + err, status


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "mypy_args", nargs="*", metavar="MYPY_ARG", help="more files for mypy (options for it go after --)"
    )


def run(args: argparse.Namespace) -> int:
    out, status = run_mypy([*args.mypy_args, *args.passthrough])
    print(out, end="")
    if status == 0:
        return EXIT_OK
    if status == 1:  # mypy: type errors found
        return EXIT_REGRESSION
    raise Unusable(f"mypy could not check the code (its exit status {status}): see above")
