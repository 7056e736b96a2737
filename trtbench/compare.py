"""Compare two saved pytest-benchmark runs per approach; exit non-zero on a regression.

    python -m trtbench.compare OLD.json NEW.json
    python -m trtbench.compare --storage .benchmarks      # the newest two saved runs

Figures compared: each test's median wall time per batch (``extra_info.ms_per_batch``).
Thresholds come from ``regression.toml`` (one table: a default, per-approach and
per-case overrides). Runs from another GPU model or TensorRT version are refused,
never compared. With no baseline the command says so and passes.

Exit status: 0 no regression (or no baseline), 1 regression, 2 refused or unusable input.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_THRESHOLDS = ROOT / "regression.toml"
IDENTITY = ("gpu_name", "tensorrt")  # a run is comparable only with runs of the same ones


class Refused(Exception):
    """The two runs must not be compared; the message says why."""


@dataclasses.dataclass(frozen=True)
class Run:
    path: Path
    machine: dict[str, Any]
    ms_per_batch: dict[str, float]  # test name -> median ms per batch
    batch_size: dict[str, int]

    @classmethod
    def load(cls, path: Path) -> "Run":
        try:
            doc = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise Refused(f"{path}: not a readable pytest-benchmark JSON ({exc})") from None
        ms, batch = {}, {}
        for bench in doc.get("benchmarks", []):
            extra = bench.get("extra_info", {})
            if "ms_per_batch" in extra:
                ms[bench["name"]] = float(extra["ms_per_batch"])
                batch[bench["name"]] = int(extra.get("batch_size", 0))
        return cls(Path(path), doc.get("machine_info", {}), ms, batch)


def case_of(test_name: str) -> str:
    """``test_approach[torch-cuda_graph-b1]`` -> ``cuda_graph-b1`` (the id without the backend)."""
    match = re.search(r"\[[a-z]+-([a-z0-9_-]+)\]", test_name)
    return match.group(1) if match else test_name


def threshold_for(test_name: str, thresholds: dict[str, float]) -> float:
    """The case's own threshold (``cuda_graph-b1``), else its approach's (``cuda_graph``), else the default."""
    case = case_of(test_name)
    return thresholds.get(case, thresholds.get(case.split("-")[0], thresholds["default"]))


def load_thresholds(path: Path = DEFAULT_THRESHOLDS) -> dict[str, float]:
    table = tomllib.loads(Path(path).read_text())["thresholds"]
    if "default" not in table:
        raise Refused(f"{path}: [thresholds] needs a 'default'")
    for key, value in table.items():
        if not isinstance(value, (int, float)) or not 0 < value < 10:
            raise Refused(f"{path}: threshold {key} = {value!r} is not a fraction such as 0.10")
    return {k: float(v) for k, v in table.items()}


@dataclasses.dataclass(frozen=True)
class Row:
    name: str
    old_ms: float | None
    new_ms: float | None
    threshold: float
    verdict: str  # ok, REGRESSION, faster, new, gone

    @property
    def change(self) -> float | None:
        if self.old_ms is None or self.new_ms is None:
            return None
        return self.new_ms / self.old_ms - 1


def check_comparable(old: Run, new: Run) -> None:
    for field in IDENTITY:
        a, b = old.machine.get(field, "unknown"), new.machine.get(field, "unknown")
        if a != b:
            raise Refused(f"refusing to compare: {field} differs ({old.path.name}: {a!r}, {new.path.name}: {b!r}); "
                          "compare runs of the same GPU model and TensorRT version")
    for name in old.ms_per_batch.keys() & new.ms_per_batch.keys():
        if old.batch_size[name] != new.batch_size[name]:
            raise Refused(f"refusing to compare {name}: batch size {old.batch_size[name]} vs {new.batch_size[name]}")


def compare(old: Run, new: Run, thresholds: dict[str, float]) -> list[Row]:
    check_comparable(old, new)
    rows = []
    for name in sorted(old.ms_per_batch.keys() | new.ms_per_batch.keys()):
        threshold = threshold_for(name, thresholds)
        a, b = old.ms_per_batch.get(name), new.ms_per_batch.get(name)
        if a is None:
            verdict = "new"
        elif b is None:
            verdict = "gone"
        elif b > a * (1 + threshold):
            verdict = "REGRESSION"
        elif b < a * (1 - threshold):
            verdict = "faster"
        else:
            verdict = "ok"
        rows.append(Row(name, a, b, threshold, verdict))
    return rows


def regressions(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.verdict == "REGRESSION"]


def format_table(rows: list[Row]) -> str:
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    lines = [f"{'test':<48} {'old ms':>9} {'new ms':>9} {'change':>8} {'threshold':>9}  verdict"]
    for r in rows:
        change = "-" if r.change is None else f"{r.change:+.1%}"
        lines.append(f"{r.name:<48} {ms(r.old_ms):>9} {ms(r.new_ms):>9} {change:>8} {r.threshold:>9.0%}  {r.verdict}")
    return "\n".join(lines)


def newest_two(storage: Path) -> tuple[Path | None, Path | None]:
    """The newest two saved runs (pytest-benchmark numbers them) in a storage folder tree."""
    runs = sorted(storage.rglob("[0-9][0-9][0-9][0-9]_*.json"), key=lambda p: (p.stat().st_mtime, p.name))
    if not runs:
        return None, None
    return (runs[-2] if len(runs) > 1 else None), runs[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trtbench.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", type=Path, help="OLD.json NEW.json (default: the newest two in --storage)")
    parser.add_argument("--storage", type=Path, default=Path(".benchmarks"), help="saved runs folder (default .benchmarks)")
    parser.add_argument("--thresholds", type=Path, default=DEFAULT_THRESHOLDS, help="TOML with a [thresholds] table")
    args = parser.parse_args(argv)
    if len(args.runs) > 2:
        parser.error("give at most two runs: OLD.json NEW.json")
    if len(args.runs) == 2:
        old_path, new_path = args.runs
    elif len(args.runs) == 1:
        old_path, new_path = None, args.runs[0]
    else:
        old_path, new_path = newest_two(args.storage)
    try:
        thresholds = load_thresholds(args.thresholds)
        if new_path is None:
            raise Refused(f"no saved run found in {args.storage}")
        new = Run.load(new_path)
        if old_path is None or not Path(old_path).exists():
            print(f"no baseline to compare {new_path} with: nothing to check, passing (this run becomes the baseline)")
            return 0
        rows = compare(Run.load(old_path), new, thresholds)
    except Refused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"old: {old_path}\nnew: {new_path}\n")
    print(format_table(rows))
    bad = regressions(rows)
    if bad:
        print(f"\n{len(bad)} regression(s): " + "; ".join(
            f"{r.name} {r.old_ms:.3f} -> {r.new_ms:.3f} ms per batch ({r.change:+.1%} > {r.threshold:.0%})" for r in bad))
        return 1
    print("\nno regression")
    return 0


if __name__ == "__main__":
    sys.exit(main())
