"""Compare saved runs per test and metric; exit non-zero on a regression.

    python -m trtbench.compare OLD.json NEW.json
    python -m trtbench.compare NEW.json                 # against the newest older run beside it
    python -m trtbench.compare --storage .benchmarks    # the newest two saved runs

Per test, two metrics are decided on their per-round samples: ``wall`` (end-to-end
time per batch) and ``compute`` (GPU time of the engine's work per batch, CUDA events).
A regression needs both a change past the test's threshold and a significant
Mann-Whitney test (``trtbench.stats``). Thresholds: hand-set ``[fixed.<metric>]``
entries first, else derived from the saved runs of the same GPU, TensorRT version, model
and weights (at least ``history_min_runs``), else ``[thresholds.<metric>]`` of regression.toml.

Runs of another GPU model, TensorRT version or model are refused, never compared; so is
a run that measured nothing, and a test the old run measured that the new one lacks
(unless named with ``--allow-missing``: deselected on purpose).

Exit status: 0 no regression (or no baseline), 1 regression, 2 refused or unusable
input, 3 can't tell (a change past its threshold that the samples cannot confirm:
rerun with more --rounds).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import re
import statistics
import sys
import tomllib
from pathlib import Path
from typing import Any, Iterable, Sequence

from trtbench.cli import EXIT_OK, EXIT_REGRESSION, EXIT_UNCLEAR, Parser, Unusable, guarded, read_json
from trtbench.stats import ALPHA, Decision, decide, robust_cv, threshold_from_history

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_THRESHOLDS = ROOT / "regression.toml"
IDENTITY = ("gpu_name", "tensorrt", "model")  # a run is comparable only with runs of the same ones
# thresholds come only from runs of the same weights too: on the H100 the same kernels took
# 1.2% longer on other weight values, which widened the history's spread
THRESHOLD_IDENTITY = IDENTITY + ("weights",)
METRICS = {"wall": "wall time per batch", "compute": "GPU compute per batch"}
LOADED = (*METRICS, "enqueue")  # host enqueue time: tells an enqueue-bound test (below)
# trtexec's rule (samples/common/sampleReporting.cpp): enqueue time above 0.8 x GPU compute
# time means the GPU waits for the host, so "GPU compute" then times the host's launches
ENQUEUE_BOUND = 0.8
SCHEMA = 2  # saved runs carry per-round samples from this schema on


class Refused(Unusable):
    """The runs must not be compared, or an input is unusable; the message says why in one line."""


@dataclasses.dataclass(frozen=True)
class MeasuredTest:
    batch_size: int
    samples: dict[str, list[float]]  # metric -> per-round ms per batch


@dataclasses.dataclass(frozen=True)
class Run:
    path: Path
    machine: dict[str, Any]
    tests: dict[str, MeasuredTest]

    @classmethod
    def load(cls, path: Path) -> "Run":
        path = Path(path)
        try:
            doc = read_json(path)
        except Unusable as exc:
            raise Refused(str(exc)) from None
        if not isinstance(doc, dict) or not isinstance(doc.get("benchmarks"), list) \
                or not isinstance(doc.get("machine_info"), dict):
            raise Refused(f"{path}: not a pytest-benchmark run (expected an object with 'benchmarks' and "
                          "'machine_info')")
        schema = doc["machine_info"].get("trtbench_schema", 1)
        if not isinstance(schema, int) or schema < SCHEMA:
            raise Refused(f"{path}: saved before per-round samples were recorded (schema {schema!r}, need "
                          f"{SCHEMA}); run the suite again to make a baseline")
        tests = {}
        for bench in doc["benchmarks"]:
            extra = bench.get("extra_info") if isinstance(bench, dict) else None
            if not isinstance(extra, dict) or not isinstance(extra.get("samples"), dict):
                continue  # not one of ours (or not measured)
            try:
                measured = {m: extra["samples"][m] for m in LOADED if extra["samples"].get(m) not in (None, [])}
                samples = {m: _times(v) for m, v in measured.items()}
                if any(m in samples for m in METRICS):  # else: not measured
                    tests[str(bench["name"])] = MeasuredTest(int(extra["batch_size"]), samples)
            except (KeyError, TypeError, ValueError) as exc:
                raise Refused(f"{path}: benchmark {bench.get('name')!r} has malformed samples "
                              f"({type(exc).__name__}: {exc})") from None
        return cls(path, doc["machine_info"], tests)


def _times(values: Any) -> list[float]:
    """Per-round times: a list of finite numbers above zero, else ValueError naming the first bad one."""
    if not isinstance(values, list):
        raise ValueError(f"expected a list of per-round times, got {type(values).__name__}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
            raise ValueError(f"{v!r} is not a time (a finite number above zero)")
    return [float(v) for v in values]


# ---------------------------------------------------------------- thresholds

@dataclasses.dataclass(frozen=True)
class Settings:
    """regression.toml: decision parameters, floors, fallback and hand-set thresholds."""

    thresholds: dict[str, dict[str, float]]  # metric -> key -> fraction (fallback without history)
    fixed: dict[str, dict[str, float]]  # metric -> key -> fraction (hand-set: always wins)
    floor: dict[str, float]  # metric -> the smallest threshold history may give
    alpha: float
    noise_multiplier: float
    cv_multiplier: float
    history_min_runs: int
    history_window: int
    max_rounds_factor: int

    @classmethod
    def load(cls, path: Path = DEFAULT_THRESHOLDS) -> "Settings":
        try:
            doc = tomllib.loads(Path(path).read_text())
        except FileNotFoundError:
            raise Refused(f"--thresholds {path}: no such file") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise Refused(f"--thresholds {path}: not a readable TOML file ({exc})") from None

        def fractions(table: Any, where: str) -> dict[str, float]:
            if not isinstance(table, dict):
                raise Refused(f"--thresholds {path}: [{where}] must be a table of fractions")
            for key, value in table.items():
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 10:
                    raise Refused(f"--thresholds {path}: {where}.{key} = {value!r} is not a fraction such as 0.10")
            return {k: float(v) for k, v in table.items()}

        def section(key: str) -> dict[str, Any]:
            table = doc.get(key, {})
            if not isinstance(table, dict):
                raise Refused(f"--thresholds {path}: {key} = {table!r} must be a table ([{key}])")
            return table

        def number(key: str, default: float, kind: type) -> Any:
            value = decision.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int if kind is int else (int, float)):
                raise Refused(f"--thresholds {path}: decision.{key} = {value!r} is not "
                              f"{'an integer' if kind is int else 'a number'}")
            return kind(value)

        thresholds = {m: fractions(section("thresholds").get(m, {}), f"thresholds.{m}") for m in METRICS}
        for metric, table in thresholds.items():
            if "default" not in table:
                raise Refused(f"--thresholds {path}: [thresholds.{metric}] needs a 'default'")
        decision = section("decision")
        alpha = number("alpha", ALPHA, float)
        multiplier = number("noise_multiplier", 3.0, float)
        cv_multiplier = number("cv_multiplier", 5.0, float)
        min_runs = number("history_min_runs", 3, int)
        window = number("history_window", 10, int)
        factor = number("max_rounds_factor", 4, int)
        floors = fractions(section("floor"), "floor")
        if not (0 < alpha < 1 and multiplier > 0 and cv_multiplier >= 0 and min_runs >= 2 and window >= min_runs
                and factor >= 1):
            raise Refused(f"--thresholds {path}: [decision] needs 0 < alpha < 1, noise_multiplier > 0, cv_multiplier "
                          ">= 0, history_min_runs >= 2, history_window >= history_min_runs, max_rounds_factor >= 1")
        return cls(
            thresholds=thresholds,
            fixed={m: fractions(section("fixed").get(m, {}), f"fixed.{m}") for m in METRICS},
            floor={m: floors.get(m, 0.01) for m in METRICS},
            alpha=alpha, noise_multiplier=multiplier, cv_multiplier=cv_multiplier, history_min_runs=min_runs,
            history_window=window,
            max_rounds_factor=factor,
        )


def case_of(test_name: str) -> str:
    """``test_approach[torch-cuda_graph-b1]`` -> ``cuda_graph-b1`` (the id without the backend)."""
    match = re.search(r"\[[a-z]+-([a-z0-9_-]+)\]", test_name)
    return match.group(1) if match else test_name


def _lookup(table: dict[str, float], test_name: str) -> float | None:
    """The case's own entry (``cuda_graph-b1``), else its approach's (``cuda_graph``)."""
    case = case_of(test_name)
    return table.get(case, table.get(case.split("-")[0]))


def threshold_for(test_name: str, metric: str, settings: Settings, history: Sequence[Run]) -> tuple[float, str]:
    """The threshold of a test's metric and where it came from."""
    fixed = _lookup(settings.fixed[metric], test_name)
    if fixed is not None:
        return fixed, "fixed"
    samples = [r.tests[test_name].samples[metric] for r in history[-settings.history_window:]
               if test_name in r.tests and r.tests[test_name].samples.get(metric)]
    derived = history_threshold(samples, metric, settings)
    if derived is not None:
        if derived >= 10:  # a threshold of 1000%: the history holds a run that is not of the same code
            spread = ", ".join(f"{statistics.median(x):.3f}" for x in samples)
            raise Refused(f"{test_name} {metric}: the history's medians ({spread} ms) spread too far for a threshold; "
                          "remove the outlying saved run or give --storage a history of the same code")
        return derived, f"history of {len(samples)} runs"
    table = settings.thresholds[metric]
    value = _lookup(table, test_name)
    return (table["default"] if value is None else value), "regression.toml"


def history_threshold(samples: Sequence[Sequence[float]], metric: str, settings: Settings) -> float | None:
    """The threshold of one test's metric from its per-round samples in earlier runs (None: too few)."""
    return threshold_from_history([statistics.median(x) for x in samples], settings.floor[metric],
                                  settings.noise_multiplier, settings.history_min_runs,
                                  [robust_cv(x) for x in samples], settings.cv_multiplier)


# ---------------------------------------------------------------- comparison

@dataclasses.dataclass(frozen=True)
class Row:
    name: str
    metric: str
    decision: Decision
    threshold_source: str

    @property
    def verdict(self) -> str:
        return self.decision.verdict


def check_comparable(old: Run, new: Run) -> None:
    for field in IDENTITY:
        a, b = old.machine.get(field, "unknown"), new.machine.get(field, "unknown")
        if a != b:
            raise Refused(f"refusing to compare: {field} differs ({old.path.name}: {a!r}, {new.path.name}: {b!r}); "
                          "compare runs of the same GPU model, TensorRT version and model")
    for name in old.tests.keys() & new.tests.keys():
        if old.tests[name].batch_size != new.tests[name].batch_size:
            raise Refused(f"refusing to compare {name}: batch size {old.tests[name].batch_size} vs "
                          f"{new.tests[name].batch_size}")


def compare(old: Run, new: Run, settings: Settings, history: Sequence[Run] = (),
            allow_missing: Iterable[str] = ()) -> list[Row]:
    """Decide every metric of every test both runs measured. ``history``: earlier runs of
    the same GPU (``old`` among them) for the thresholds."""
    check_comparable(old, new)
    for run in (old, new):
        if not run.tests:
            raise Refused(f"{run.path}: measured nothing (no benchmark with per-round samples): nothing to compare")
    patterns = list(allow_missing)
    missing = sorted(n for n in old.tests.keys() - new.tests.keys()
                     if not any(n == p or fnmatch.fnmatchcase(n, p) for p in patterns))  # names hold [ ]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise Refused(f"{new.path.name} lacks {len(missing)} test(s) that {old.path.name} measured: {shown}; "
                      "if they were deselected on purpose, name them with --allow-missing PATTERN")
    comparable = [r for r in history if r.path != new.path and same_identity(r, new, THRESHOLD_IDENTITY)]
    rows = []
    for name in sorted(old.tests.keys() & new.tests.keys()):
        for metric in METRICS:
            a, b = old.tests[name].samples.get(metric), new.tests[name].samples.get(metric)
            if not a or not b:
                continue
            threshold, source = threshold_for(name, metric, settings, comparable)
            if metric == "compute" and (enqueue_bound(old.tests[name]) or enqueue_bound(new.tests[name])):
                wall, wall_source = threshold_for(name, "wall", settings, comparable)
                if wall > threshold:  # its GPU time follows the host: judged with the host's noise
                    threshold, source = wall, f"wall's, enqueue-bound; {wall_source}"
            rows.append(Row(name, metric, decide(a, b, threshold, settings.alpha), source))
    if not rows:
        raise Refused(f"{old.path.name} and {new.path.name} measured no metric of any test in common: nothing to compare")
    return rows


def enqueue_bound(test: MeasuredTest) -> bool:
    """trtexec's warning: the host's enqueue takes more than 0.8 x the GPU compute time."""
    enqueue, compute = test.samples.get("enqueue"), test.samples.get("compute")
    return bool(enqueue and compute) and statistics.median(enqueue) > ENQUEUE_BOUND * statistics.median(compute)


def same_identity(a: Run, b: Run, fields: Sequence[str] = IDENTITY) -> bool:
    return all(a.machine.get(f) == b.machine.get(f) for f in fields)


def regressions(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.verdict == "REGRESSION"]


def unclear(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.verdict == "unclear"]


def exit_status(rows: list[Row]) -> int:
    if regressions(rows):
        return EXIT_REGRESSION
    return EXIT_UNCLEAR if unclear(rows) else EXIT_OK


def describe(row: Row) -> str:
    d = row.decision
    return (f"{row.name} {METRICS[row.metric]} {d.old_median:.3f} -> {d.new_median:.3f} ms ({d.change:+.1%}, "
            f"threshold {d.threshold:.1%} from {row.threshold_source}; {d.reason})")


def format_table(rows: list[Row], markdown: bool = False) -> str:
    header = ["test", "metric", "old ms", "new ms", "change", "threshold", "p (Mann-Whitney)", "verdict"]

    def cells(r: Row) -> list[str]:
        d = r.decision
        p = "-" if d.p_value is None else f"{d.p_value:.2g}"
        return [r.name, r.metric, f"{d.old_median:.3f}", f"{d.new_median:.3f}", f"{d.change:+.1%}",
                f"{d.threshold:.1%} ({r.threshold_source})", p, d.verdict]

    table = [header] + [cells(r) for r in rows]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in table[1:]])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table)


def saved_runs(storage: Path) -> list[Path]:
    """Saved runs (pytest-benchmark numbers them NNNN_...) below ``storage``, oldest first."""
    numbered = [(int(m.group(1)), p) for p in storage.rglob("*.json") if (m := re.match(r"(\d{4,})_", p.name))]
    return [p for _, p in sorted(numbered, key=lambda np_: (np_[0], np_[1].stat().st_mtime))]


def load_history(paths: Iterable[Path]) -> list[Run]:
    """The loadable runs among ``paths`` (an unreadable or old-schema run is left out of the history)."""
    runs = []
    for path in paths:
        try:
            runs.append(Run.load(path))
        except Refused:
            continue
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="python -m trtbench.compare", description=__doc__.split("\n\n")[0],
                                     epilog="exit status: 0 no regression, 1 regression, 2 refused, 3 can't tell")
    parser.add_argument("runs", nargs="*", type=Path, help="OLD.json NEW.json, or NEW.json (default: the newest two "
                                                           "in --storage)")
    parser.add_argument("--storage", type=Path, default=None, help="saved runs folder (default: the folder of NEW, "
                                                                  "else .benchmarks)")
    parser.add_argument("--thresholds", type=Path, default=DEFAULT_THRESHOLDS, help="TOML like regression.toml")
    parser.add_argument("--allow-missing", action="append", default=[], metavar="PATTERN",
                        help="a test name, or an fnmatch pattern, the new run may lack: deselected on purpose")
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown (a job summary)")
    args = parser.parse_args(argv)
    if len(args.runs) > 2:
        parser.error(f"give at most two runs (OLD.json NEW.json), got {len(args.runs)}")
    missing = [str(p) for p in args.runs if not p.is_file()]
    if missing:
        raise Refused(f"no such file: {', '.join(missing)}")
    settings = Settings.load(args.thresholds)
    storage = args.storage or (args.runs[-1].parent if args.runs else Path(".benchmarks"))
    if args.storage is not None and not args.storage.is_dir():
        raise Refused(f"--storage {args.storage}: not a folder")
    history_paths = saved_runs(storage) if storage.is_dir() else []
    if len(args.runs) == 2:
        old_path, new_path = args.runs
    else:
        new_path = args.runs[0] if args.runs else (history_paths[-1] if history_paths else None)
        if new_path is None:
            raise Refused(f"no saved run found in {storage}")
        older = [p for p in history_paths if p.resolve() != Path(new_path).resolve()]
        old_path = older[-1] if older else None
    new = Run.load(new_path)
    if old_path is None:
        if not new.tests:
            raise Refused(f"{new_path}: measured nothing (no benchmark with per-round samples)")
        print(f"no baseline to compare {new_path} with: first run, passing (it becomes the baseline)")
        return EXIT_OK
    old = Run.load(old_path)
    history = load_history(p for p in history_paths if p.resolve() != Path(new_path).resolve())
    rows = compare(old, new, settings, history, args.allow_missing)
    print(f"old: {old_path}\nnew: {new_path}\n")
    print(format_table(rows, args.markdown))
    status = exit_status(rows)
    bad = regressions(rows) if status == EXIT_REGRESSION else unclear(rows)
    if status == EXIT_OK:
        print("\nno regression")
    else:
        what = "regression(s)" if status == EXIT_REGRESSION else "can't tell: rerun with more --rounds"
        print(f"\n{len(bad)} {what}: " + "; ".join(describe(r) for r in bad))
    return status


if __name__ == "__main__":
    sys.exit(guarded(main))
