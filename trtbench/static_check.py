"""Type-check the TensorRT code against ``tensorrt-stubs`` (10.13 API) with mypy.

TensorRT cannot be installed on our machines, so this is how its calls are verified.
The stub package installs ``tensorrt/__init__.pyi`` without a ``py.typed`` marker, and
its generated ``tensorrt.pyi`` has a few syntax defects (parameters named ``in``, a
non-default parameter after defaults) that stop mypy; this copies the stubs, mends
exactly those, and runs mypy with them on ``MYPYPATH`` (configuration in
pyproject.toml). ``python -m trtbench.static_check`` exits non-zero on any error.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

STUB_PACKAGES = ("tensorrt", "tensorrt_bindings")
ROOT = Path(__file__).resolve().parents[1]


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{name} stubs not found: pip install --no-deps tensorrt-stubs==10.13.0.35.1")
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
            raise RuntimeError(f"{source} is a real {name} install, not stubs: check against it directly")
        target = dest / name
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.pyc", "__pycache__"))
        for pyi in target.glob("*.pyi"):
            text, n = mend(pyi.read_text())
            pyi.write_text(text)
            fixes += n
    if fixes == 0:
        raise RuntimeError("no stub defect found to mend: the stubs changed, review trtbench.static_check")
    return dest


def run_mypy(extra_args: list[str] | None = None) -> tuple[str, int]:
    from mypy import api

    with tempfile.TemporaryDirectory() as tmp:
        stubs = prepare_stubs(Path(tmp))
        old = os.environ.get("MYPYPATH")
        os.environ["MYPYPATH"] = str(stubs)
        try:
            out, err, status = api.run(["--config-file", str(ROOT / "pyproject.toml"), "--no-incremental",
                                        *(extra_args or [])])
        finally:
            if old is None:
                os.environ.pop("MYPYPATH", None)
            else:
                os.environ["MYPYPATH"] = old
    return out + err, status


def main() -> int:
    out, status = run_mypy()
    print(out, end="")
    return status


if __name__ == "__main__":
    sys.exit(main())
