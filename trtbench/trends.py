"""Trends of saved runs over commits: per test and metric, each run's median and spread in
commit order, one series per machine, and the steps found in each series.

    python -m trtbench.commands.trends .benchmarks --out trends/

How a step is found (README, "Trends"):

1. Per run, the statistic is the median of its per-round samples (ms per batch; img/s is
   batch size / wall time, per round); its spread is p10-p90 of the same samples.
2. Per series (one machine, test and metric, runs in commit order) the log of the medians
   is divided by the series' run-to-run noise (``run_noise``), so that one penalty fits
   every test, and ruptures' PELT proposes change points.
3. A candidate is kept only if (a) a permutation test of the runs between its neighbours
   gives p < ``ALPHA`` (the statistic is the largest standardized Mann-Whitney rank sum over
   every split of those runs, as in Pettitt's test, so that choosing the split is paid
   for), and (b) its size, the ratio of the medians after / before, is past both
   ``NOISE_MULTIPLE`` x the noise and ``FLOOR``. Otherwise the weakest candidate is dropped
   and the others are judged again with wider neighbours.

Runs are the unit of the test, never rounds: rounds of one process share its level (the
run-to-run noise), so a test on rounds would call any two processes different.

Saved runs are read through ``trtbench.runs`` (``_read``).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import html
import itertools
import math
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import ruptures
from ruptures.base import BaseCost
from scipy.stats import rankdata

from trtbench import runs as saved
from trtbench.cli import Unusable
from trtbench.stats import ALPHA, bootstrap_ratio_ci

METRICS = {  # metric -> what it is, in words (ms per batch unless named)
    "compute": "GPU compute ms/batch",
    "wall": "wall ms/batch",
    "upload": "upload ms/batch",
    "enqueue": "enqueue ms/batch",
    "images_per_s": "img/s",
}
HIGHER_IS_BETTER = {"images_per_s"}
# bisect times img/s through wall time (its inverse, per round)
BISECT_METRIC = {"images_per_s": "wall"}
MACHINE = saved.MACHINE_IDENTITY  # a series never crosses a change of these
UNKNOWN = "unknown"
DETAILS = ("cuda_driver", "cuda_runtime", "torch", "compute_capability")  # shown, never split on

MIN_SEGMENT = 3  # runs on each side of a change point: one odd run is not a step
PENALTY = 3.0  # x log(runs): PELT's cost of a change point on noise-scaled medians
NOISE_MULTIPLE = 2.0  # a step must be past this many run-to-run noises ...
FLOOR = 0.01  # ... and past 1%: below it, graph-replayed GPU time moves with the machine's day
TRIM = 0.05  # the largest 5% of successive differences are left out of the noise: a lone odd run
PERMUTATIONS = 1999  # p resolution 1/2000, under ALPHA
DEFAULT_MIN_RUNS = 10  # a machine's series with fewer runs is drawn, not searched


# ---------------------------------------------------------------- reading saved runs


@dataclasses.dataclass(frozen=True)
class Measured:
    batch_size: int
    samples: dict[str, np.ndarray]  # metric -> per-round values


@dataclasses.dataclass(frozen=True)
class RunPoint:
    path: Path
    machine: tuple[str, ...]  # the MACHINE fields, UNKNOWN where a run lacks one
    details: str  # other versions, for the reader
    commit: str  # commit id, or UNKNOWN
    dirty: bool  # measured with uncommitted changes: no commit holds its code
    commit_time: datetime | None
    saved_at: datetime | None
    tests: dict[str, Measured]

    @property
    def model(self) -> str:
        return self.machine[MACHINE.index("model")]


def _read(path: Path) -> RunPoint:
    """One saved run as a point of the series, or Unusable saying why not."""
    run = saved.SavedRun.load(path).measured()
    tests = {}
    for name, record in run.tests.items():
        samples = {m: np.asarray(v, np.float64) for m, v in record.samples.items() if m in METRICS}
        if "wall" in samples:
            samples["images_per_s"] = record.batch_size * 1000.0 / samples["wall"]
        tests[name] = Measured(record.batch_size, samples)
    machine = tuple(_text(run.machine.get(field)) for field in MACHINE)
    details = ", ".join(f"{k} {run.machine[k]}" for k in DETAILS if run.machine.get(k) not in (None, ""))
    return RunPoint(
        Path(path),
        machine,
        details,
        _text(run.commit.get("id")),
        run.commit.get("dirty") is True,
        _when(run.commit.get("time")),
        _when(run.saved_at),
        tests,
    )


def _text(value: Any) -> str:
    return UNKNOWN if value in (None, "") else str(value)


def _when(value: Any) -> datetime | None:
    """An ISO time (pytest-benchmark's commit time and run time); naive ones are taken as UTC."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def read_storage(storage: Path) -> tuple[list[RunPoint], list[str]]:
    """Every JSON file below ``storage``: the usable runs in commit order, and one line
    ``left out: FILE: why`` for each other file."""
    runs, left_out = [], []
    for path in _saved_order(storage):
        try:
            runs.append(_read(path))
        except Unusable as exc:
            why = str(exc).removeprefix(f"{path}: ").replace("\n", " ")
            left_out.append(f"left out: {path}: {why}")
    return commit_order(runs), left_out


def _saved_order(storage: Path) -> list[Path]:
    """pytest-benchmark numbers its runs NNNN_...; those first, by number, then any other JSON by name."""
    files = sorted(p for p in Path(storage).rglob("*.json") if p.is_file())

    def key(path: Path) -> tuple[int, int, str]:
        match = saved.RUN_FILE.match(path.name)
        return (0, int(match.group(1)), str(path)) if match else (1, 0, str(path))

    return sorted(files, key=key)


def commit_order(runs: Sequence[RunPoint]) -> list[RunPoint]:
    """Runs by commit time, then by when their commit was first measured; runs of one commit
    keep the order given (their saved order). A run without a commit counts at its own time."""
    far = datetime.max.replace(tzinfo=UTC)
    first_measured: dict[str, datetime] = {}
    for run in runs:
        if run.commit != UNKNOWN:
            first_measured[run.commit] = min(first_measured.get(run.commit, far), run.saved_at or far)

    def key(run: RunPoint) -> tuple[datetime, datetime]:
        own = run.saved_at or far
        return (run.commit_time or own, first_measured.get(run.commit, own))

    return sorted(runs, key=key)  # stable: the given order within a commit


# ---------------------------------------------------------------- finding steps


class _CumulativeL2(BaseCost):
    """ruptures' least-squares segment cost from cumulative sums: O(1) per segment, where
    ruptures' own "l2" takes the variance of the segment each time."""

    model = "cumulative_l2"

    def __init__(self) -> None:
        self.min_size = 1
        self.signal = np.zeros((0, 1))
        self._sum = self._squares = np.zeros(1)

    def fit(self, signal: np.ndarray) -> _CumulativeL2:
        values = np.asarray(signal, np.float64).reshape(-1)
        self.signal = values.reshape(-1, 1)
        self._sum = np.concatenate([[0.0], np.cumsum(values)])
        self._squares = np.concatenate([[0.0], np.cumsum(values * values)])
        return self

    def error(self, start: int, end: int) -> float:
        total = self._sum[end] - self._sum[start]
        return float(self._squares[end] - self._squares[start] - total * total / (end - start))


@dataclasses.dataclass(frozen=True)
class Step:
    at: int  # index of the first run after the step, in the series given
    ratio: float  # median of the run medians after / before
    ci: tuple[float, float]  # 95% bootstrap interval of the ratio (over runs)
    p: float  # permutation p-value of a change among the runs around it
    runs_before: int  # runs it was judged on, before and after
    runs_after: int


def run_noise(log_medians: Sequence[float], trim: float = TRIM) -> float:
    """Run-to-run noise of a series (log scale, so a fraction): the root mean square of
    successive differences / sqrt(2), without the largest ``trim`` share of them. Successive
    differences barely feel a step; the trim keeps a lone odd run from widening it."""
    diffs = np.sort(np.abs(np.diff(np.asarray(log_medians, np.float64))))
    if diffs.size == 0:
        return 0.0
    kept = diffs[: max(1, int(diffs.size * (1 - trim)))]
    return float(np.sqrt(np.mean(kept**2) / 2))


def detectable_step(noise: float) -> float:
    """The smallest step (a fraction) this module reports in a series of that noise."""
    return max(FLOOR, math.expm1(NOISE_MULTIPLE * noise))


def change_p(
    values: Sequence[float], min_size: int = MIN_SEGMENT, permutations: int = PERMUTATIONS, seed: int = 0
) -> float:
    """p-value of "no change anywhere in ``values``": the largest standardized Mann-Whitney
    rank sum over every split with ``min_size`` values a side, against the same statistic of
    random orders of the values (seeded: reproducible)."""
    ranks = rankdata(np.asarray(values, np.float64))
    n = ranks.size
    splits = np.arange(min_size, n - min_size + 1)
    if splits.size == 0:
        return 1.0
    scale = np.sqrt(splits * (n - splits) * (n + 1) / 3.0)

    def statistic(rows: np.ndarray) -> np.ndarray:
        rank_sums = np.cumsum(rows, axis=-1)[..., splits - 1]
        return np.max(np.abs(2 * rank_sums - splits * (n + 1)) / scale, axis=-1)

    observed = statistic(ranks)
    shuffled = np.random.default_rng(seed).permuted(np.tile(ranks, (permutations, 1)), axis=1)
    return float((1 + np.count_nonzero(statistic(shuffled) >= observed - 1e-9)) / (permutations + 1))


def find_steps(medians: Sequence[float], min_size: int = MIN_SEGMENT, alpha: float = ALPHA) -> tuple[list[Step], float]:
    """The steps of one series of per-run medians (commit order), and its run-to-run noise."""
    values = np.asarray(medians, np.float64)
    logs = np.log(values)
    noise = run_noise(logs)
    if values.size < 2 * min_size or noise == 0:
        return [], noise
    scaled = (logs - np.median(logs)) / noise
    found = ruptures.Pelt(custom_cost=_CumulativeL2(), min_size=min_size, jump=1).fit(scaled)
    cuts = found.predict(pen=PENALTY * math.log(values.size))[:-1]
    while True:
        steps = [_judge(values, logs, cuts, i, min_size) for i in range(len(cuts))]
        weak = [s for s in steps if not _reported(s, noise, alpha)]
        if not weak:
            return steps, noise
        weakest = max(weak, key=lambda s: (s.p, -abs(math.log(s.ratio))))
        cuts = [c for c in cuts if c != weakest.at]


def _judge(values: np.ndarray, logs: np.ndarray, cuts: list[int], i: int, min_size: int) -> Step:
    start = cuts[i - 1] if i else 0
    end = cuts[i + 1] if i + 1 < len(cuts) else values.size
    before, after = values[start : cuts[i]], values[cuts[i] : end]
    ci = bootstrap_ratio_ci(before, after)
    return Step(
        cuts[i],
        float(np.median(after) / np.median(before)),
        ci,
        change_p(logs[start:end], min_size),
        before.size,
        after.size,
    )


def _reported(step: Step, noise: float, alpha: float) -> bool:
    return step.p < alpha and abs(math.log(step.ratio)) > NOISE_MULTIPLE * noise and abs(step.ratio - 1) >= FLOOR


# ---------------------------------------------------------------- series of a storage folder


@dataclasses.dataclass(frozen=True)
class Point:
    x: int  # position of the run among its model's runs (commit order)
    run: RunPoint
    median: float
    low: float  # p10 of the run's per-round values
    high: float  # p90


@dataclasses.dataclass(frozen=True)
class Change:
    model: str
    test: str
    metric: str
    machine: int  # index in Trends.machines
    step: Step
    noise: float
    good: Point  # the last run before the step
    bad: Point  # the first run after it

    @property
    def slower(self) -> bool:
        return (self.step.ratio < 1) if self.metric in HIGHER_IS_BETTER else (self.step.ratio > 1)


@dataclasses.dataclass(frozen=True)
class Group:
    """One machine's series of one test and metric."""

    machine: int  # index in Trends.machines
    batch_size: int
    points: list[Point]
    noise: float
    changes: list[Change]
    searched: bool  # False: fewer runs than --min-runs


@dataclasses.dataclass(frozen=True)
class Series:
    model: str
    test: str
    metric: str
    groups: list[Group]


@dataclasses.dataclass(frozen=True)
class Trends:
    runs: list[RunPoint]  # commit order
    machines: list[tuple[str, ...]]  # distinct MACHINE identities, by first run
    series: list[Series]  # by model, test, then metric
    changes: list[Change]  # newest first
    left_out: list[str]
    metrics: list[str]
    min_runs: int

    def model_runs(self, model: str) -> list[RunPoint]:
        return [r for r in self.runs if r.model == model]


def matches(test: str, patterns: Sequence[str]) -> bool:
    """A test name given exactly or matched by an fnmatch pattern (names hold [ ], which
    fnmatch reads as a set of characters)."""
    return not patterns or any(test == p or fnmatch.fnmatchcase(test, p) for p in patterns)


def trends(
    runs: Sequence[RunPoint],
    left_out: Sequence[str] = (),
    metrics: Sequence[str] = tuple(METRICS),
    patterns: Sequence[str] = (),
    min_runs: int = DEFAULT_MIN_RUNS,
) -> Trends:
    """Series and changes of ``runs`` (commit order), for the tests matching ``patterns``."""
    machines = list(dict.fromkeys(r.machine for r in runs))
    series, changes = [], []
    for model in dict.fromkeys(r.model for r in runs):
        ordered = [r for r in runs if r.model == model]
        names = [t for t in tests_of(ordered) if matches(t, patterns)]
        for test in names:
            for metric in metrics:
                groups = _groups(ordered, test, metric, machines, min_runs)
                if groups:
                    series.append(Series(model, test, metric, groups))
                    changes += [c for g in groups for c in g.changes]
    position = {id(run): i for i, run in enumerate(runs)}
    changes.sort(key=lambda c: (position[id(c.bad.run)], c.test, c.metric), reverse=True)
    return Trends(list(runs), machines, series, changes, list(left_out), list(metrics), min_runs)


def _groups(
    ordered: list[RunPoint], test: str, metric: str, machines: list[tuple[str, ...]], min_runs: int
) -> list[Group]:
    by_machine: dict[tuple[int, int], list[Point]] = {}
    for x, run in enumerate(ordered):
        measured = run.tests.get(test)
        if measured is None or metric not in measured.samples:
            continue
        values = measured.samples[metric]
        low, median, high = np.percentile(values, [10, 50, 90])
        key = (machines.index(run.machine), measured.batch_size)
        by_machine.setdefault(key, []).append(Point(x, run, float(median), float(low), float(high)))
    groups = []
    for (machine, batch), points in by_machine.items():
        searched = len(points) >= min_runs
        steps, noise = find_steps([p.median for p in points]) if searched else ([], _noise_of(points))
        changes = [
            Change(ordered[0].model, test, metric, machine, s, noise, points[s.at - 1], points[s.at]) for s in steps
        ]
        groups.append(Group(machine, batch, points, noise, changes, searched))
    return groups


def _noise_of(points: list[Point]) -> float:
    return run_noise(np.log([p.median for p in points]))


# ---------------------------------------------------------------- words and commands


def short(commit: str) -> str:
    return commit if commit == UNKNOWN else commit[:10]


def commit_text(run: RunPoint) -> str:
    return short(run.commit) + (" (dirty)" if run.dirty else "")


def machine_label(machine: tuple[str, ...]) -> str:
    fields = dict(zip(MACHINE, machine))
    return (
        f"{fields['gpu_name']}, driver {fields['nvidia_driver']}, TensorRT {fields['tensorrt']}, "
        f"{fields['model']}, weights {fields['weights']}"
    )


def size_text(change: Change) -> str:
    low, high = change.step.ci
    return f"{change.step.ratio - 1:+.1%} ({low - 1:+.1%} to {high - 1:+.1%})"


def confirm_commands(change: Change) -> list[str]:
    """The command lines that would confirm a change: an A/B run of the two commits, and a bisect
    between them. None where both sides ran the same commit: then the runner changed, not the code."""
    good, bad = change.good.run.commit, change.bad.run.commit
    if UNKNOWN in (good, bad) or good == bad or change.good.run.dirty or change.bad.run.dirty:
        return []
    test = _quoted(change.test)
    metric = BISECT_METRIC.get(change.metric, change.metric)
    return [
        f"trtbench ab --base {good} --head {bad} -k {test}",
        f"trtbench bisect --good {good} --bad {bad} -k {test} --metric {metric}",
    ]


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def why_no_commands(change: Change) -> str:
    if UNKNOWN in (change.good.run.commit, change.bad.run.commit):
        return "a run without its commit: no command to confirm it"
    if change.good.run.dirty or change.bad.run.dirty:
        return "a run with uncommitted changes (dirty) on one side: no commit holds its code"
    return "the same commit on both sides: the runner changed, not the code"


def headline(result: Trends) -> str:
    tests = len({(s.model, s.test) for s in result.series})
    return (
        f"Trends: {len(result.changes)} change(s) in {len(result.runs)} runs of {len(result.machines)} "
        f"machine(s), {tests} tests x {len(result.metrics)} metrics"
    )


def markdown(result: Trends) -> str:
    """The summary for a job summary: the changes newest first, then the files left out."""
    lines = [f"## {headline(result)}", ""]
    if result.changes:
        header = [
            "first run after",
            "test",
            "metric",
            "machine",
            "last good -> first bad commit",
            "size (95% CI)",
            "p",
            "noise",
            "confirm",
        ]
        lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        for c in result.changes:
            commands = confirm_commands(c)
            confirm = "<br>".join(f"`{cmd}`" for cmd in commands) if commands else why_no_commands(c)
            cells = [
                f"#{c.bad.x + 1} ({_day(c.bad.run)})",
                f"`{c.test}`",
                c.metric,
                f"M{c.machine + 1}",
                f"`{commit_text(c.good.run)}` -> `{commit_text(c.bad.run)}`",
                f"{size_text(c)} {'slower' if c.slower else 'faster'}",
                f"{c.step.p:.2g}",
                f"{c.noise:.1%}",
                confirm,
            ]
            lines.append("| " + " | ".join(x.replace("|", "\\|") for x in cells) + " |")
    else:
        lines.append(_no_change(result))
    lines += ["", "Machines: " + "; ".join(f"M{i + 1} = {machine_label(m)}" for i, m in enumerate(result.machines))]
    if result.left_out:
        lines += ["", f"Left out ({len(result.left_out)}):", ""] + [f"- {line}" for line in result.left_out]
    return "\n".join(lines) + "\n"


def searched_nothing(result: Trends) -> bool:
    """Whether no series had the runs to be searched: no answer either way, not "no change"."""
    return not any(g.searched for s in result.series for g in s.groups)


def _no_change(result: Trends) -> str:
    groups = [g for s in result.series for g in s.groups]
    unsearched = sum(not g.searched for g in groups)
    if searched_nothing(result):
        return (
            f"Nothing searched: all {len(groups)} series have fewer than {result.min_runs} runs (--min-runs), "
            "so no change can be found or ruled out yet."
        )
    if not unsearched:
        return "No change found: every series stays within its run-to-run noise."
    return (
        f"No change found; {unsearched} of {len(groups)} series have fewer than {result.min_runs} runs "
        "(--min-runs) and were not searched."
    )


def _day(run: RunPoint) -> str:
    when = run.saved_at or run.commit_time
    return when.strftime("%Y-%m-%d") if when else "no date"


def _when_text(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M") if when else "-"


# ---------------------------------------------------------------- the page

WIDTH, HEIGHT = 250, 120  # one chart, in CSS pixels: five side by side in 1300
LEFT, RIGHT, TOP, BOTTOM = 44, 6, 8, 16
COLOURS = ("#1f5fa8", "#c0561a", "#2e8540", "#7b3fa0", "#8a6d00", "#0f7c86")
BANDS = ("#eef3fa", "#fbefe6", "#eaf5ec", "#f3ebf7", "#f7f1dc", "#e6f4f5")
STYLE = (
    """
body{font:13px/1.4 system-ui,sans-serif;margin:16px;color:#222}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}h3{font-size:14px;margin:18px 0 4px}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;
vertical-align:top}th{background:#f2f2f2}td.n{text-align:right}code{font-size:12px}
.row{display:flex;flex-wrap:wrap;gap:6px}.chart{border:1px solid #ddd;padding:2px 4px}
.chart p{margin:0;font-size:11px;color:#555}.chart b{color:#222}
svg text{font-size:9px;fill:#555}.grid{stroke:#e4e4e4}.bar{stroke-width:1;opacity:.45}
.seg{stroke-width:1.5;fill:none}.cp{stroke:#d00;stroke-width:1.5;stroke-dasharray:3 2}
.cpl{fill:#d00;font-weight:bold}.slow{color:#b00}.fast{color:#070}
"""
    + f".chart{{width:{WIDTH}px}}"
)  # the header wraps instead of widening a chart


def page(result: Trends) -> str:
    """One self-contained HTML page: changes, limits, machines, then a chart per test and metric."""
    parts = [
        (
            f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(headline(result))}</title>"
            f"<style>{STYLE}</style></head><body>"
        ),
        f"<h1>{_e(headline(result))}</h1>",
        (
            "<p>Per run: the median of its per-round samples (dot) and p10-p90 of them (bar); lines: the median of "
            "each stretch between change points; red dashed lines: change points (hover for size and commits, "
            "click for the commands that would confirm one); shaded bands: runs of another machine (each machine "
            "is its own series). Hover a dot for its run, commit and machine.</p>"
        ),
        _changes_table(result),
        _left_out_list(result),
        _machines_table(result),
        _limits_table(result),
    ]
    for model in dict.fromkeys(s.model for s in result.series):
        parts.append(f"<h2>{_e(model)}</h2>")
        bands = _bands(result, model)
        xs = len(result.model_runs(model))
        for test in dict.fromkeys(s.test for s in result.series if s.model == model):
            charts = [_chart(s, result, bands, xs) for s in result.series if s.model == model and s.test == test]
            parts.append(f"<h3 id='{_anchor(model, test)}'>{_e(test)}</h3><div class='row'>{''.join(charts)}</div>")
    parts.append(_runs_table(result))
    parts.append("</body></html>")
    return "\n".join(parts)


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _anchor(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", "-".join(parts)).strip("-")


def _changes_table(result: Trends) -> str:
    if not result.changes:
        return f"<h2>Changes</h2><p>{_e(_no_change(result))}</p>"
    rows = []
    for i, c in enumerate(result.changes):
        commands = confirm_commands(c)
        confirm = "<br>".join(f"<code>{_e(cmd)}</code>" for cmd in commands) if commands else _e(why_no_commands(c))
        word = "slower" if c.slower else "faster"
        rows.append(
            f"<tr id='change-{i}'><td class='n'>#{c.bad.x + 1}<br>{_day(c.bad.run)}</td>"
            f"<td><a href='#{_anchor(c.model, c.test)}'>{_e(c.test)}</a><br>{_e(c.model)}</td><td>{_e(c.metric)}</td>"
            f"<td>M{c.machine + 1}</td><td><code>{_e(commit_text(c.good.run))}</code> &rarr; "
            f"<code>{_e(commit_text(c.bad.run))}</code></td><td class='{word[:4]}'>{_e(size_text(c))} {word}</td>"
            f"<td class='n'>{c.step.p:.2g}</td><td class='n'>{c.noise:.1%}</td>"
            f"<td class='n'>{c.step.runs_before} / {c.step.runs_after}</td><td>{confirm}</td></tr>"
        )
    return (
        "<h2>Changes, newest first</h2><table><tr><th>first run after</th><th>test</th><th>metric</th>"
        "<th>machine</th><th>last good &rarr; first bad commit</th><th>size (95% CI)</th><th>p</th>"
        "<th>noise</th><th>runs before / after</th><th>confirm</th></tr>" + "".join(rows) + "</table>"
    )


def _left_out_list(result: Trends) -> str:
    if not result.left_out:
        return ""
    return (
        f"<h2>Left out ({len(result.left_out)})</h2><ul>"
        + "".join(f"<li>{_e(line)}</li>" for line in result.left_out)
        + "</ul>"
    )


def _machines_table(result: Trends) -> str:
    rows = []
    for i, machine in enumerate(result.machines):
        runs = [r for r in result.runs if r.machine == machine]
        cells = "".join(f"<td>{_e(v)}</td>" for v in machine)
        rows.append(
            f"<tr><td style='color:{COLOURS[i % len(COLOURS)]}'><b>M{i + 1}</b></td>{cells}"
            f"<td class='n'>{len(runs)}</td><td>{_e(runs[0].details)}</td></tr>"
        )
    head = "".join(f"<th>{_e(f)}</th>" for f in MACHINE)
    return (
        f"<h2>Machines</h2><table><tr><th></th>{head}<th>runs</th><th>other versions (first run)</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _limits_table(result: Trends) -> str:
    """Per test and machine, the smallest step each metric can show, from the series' own noise."""
    cells: dict[tuple[str, str, int], dict[str, str]] = {}
    for s in result.series:
        for g in s.groups:
            text = (
                f"&ge;{detectable_step(g.noise):.1%}"
                if g.searched
                else f"not searched ({len(g.points)} runs &lt; {result.min_runs})"
            )
            cells.setdefault((s.model, s.test, g.machine), {})[s.metric] = (
                f"{text} <small>(noise {g.noise:.1%}, {len(g.points)} runs)</small>"
            )
    head = "".join(f"<th>{_e(METRICS[m])}</th>" for m in result.metrics)
    rows = "".join(
        f"<tr><td>{_e(test)}</td><td>{_e(model)}</td><td>M{machine + 1}</td>"
        + "".join(f"<td>{found.get(m, '-')}</td>" for m in result.metrics)
        + "</tr>"
        for (model, test, machine), found in cells.items()
    )
    return (
        "<details><summary><b>What each series can see</b>: the smallest step reported, "
        f"max({FLOOR:.0%}, e^({NOISE_MULTIPLE:g} x noise) - 1), with noise = the series' run-to-run noise; "
        f"a step also needs {MIN_SEGMENT} runs after it and p &lt; {ALPHA:g}</summary>"
        f"<table><tr><th>test</th><th>model</th><th>machine</th>{head}</tr>{rows}</table></details>"
    )


def _bands(result: Trends, model: str) -> list[tuple[int, int, int]]:
    """Stretches (first x, last x, machine) of the model's runs, where it ran on several machines."""
    runs = result.model_runs(model)
    if len({r.machine for r in runs}) < 2:
        return []
    stretches: list[tuple[int, int, int]] = []
    for x, run in enumerate(runs):
        machine = result.machines.index(run.machine)
        if stretches and stretches[-1][2] == machine:
            stretches[-1] = (stretches[-1][0], x, machine)
        else:
            stretches.append((x, x, machine))
    return stretches


def _chart(series: Series, result: Trends, bands: list[tuple[int, int, int]], xs: int) -> str:
    points = [p for g in series.groups for p in g.points]
    low, high = _y_range(points)
    pad = (high - low) * 0.06
    low, high = low - pad, high + pad
    span_x = max(xs - 1, 1)

    def px(x: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (x / span_x if xs > 1 else 0.5)

    def py(y: float) -> float:  # spread bars past the range stop at its edge
        return TOP + (HEIGHT - TOP - BOTTOM) * (high - min(max(y, low), high)) / (high - low)

    out = [f"<svg width='{WIDTH}' height='{HEIGHT}' viewBox='0 0 {WIDTH} {HEIGHT}' role='img'>"]
    step_px = (WIDTH - LEFT - RIGHT) / span_x if xs > 1 else 0
    for first, last, machine in bands:
        out.append(
            f"<rect x='{px(first) - step_px / 2:.1f}' y='{TOP}' width='{(last - first + 1) * step_px:.1f}' "
            f"height='{HEIGHT - TOP - BOTTOM}' fill='{BANDS[machine % len(BANDS)]}'>"
            f"<title>M{machine + 1}: {_e(machine_label(result.machines[machine]))}</title></rect>"
        )
    for value in (low + pad, (low + high) / 2, high - pad):
        y = py(value)
        out.append(
            f"<line class='grid' x1='{LEFT}' x2='{WIDTH - RIGHT}' y1='{y:.1f}' y2='{y:.1f}'/>"
            f"<text x='{LEFT - 3}' y='{y + 3:.1f}' text-anchor='end'>{_number(value)}</text>"
        )
    out.append(
        f"<text x='{LEFT}' y='{HEIGHT - 3}'>run 1</text>"
        f"<text x='{WIDTH - RIGHT}' y='{HEIGHT - 3}' text-anchor='end'>run {xs}</text>"
    )
    several_batches = len({g.batch_size for g in series.groups}) > 1
    for g in series.groups:
        colour = COLOURS[g.machine % len(COLOURS)]
        bars = "".join(f"M{px(p.x):.1f} {py(p.high):.1f}V{py(p.low):.1f}" for p in g.points)
        out.append(f"<path class='bar' stroke='{colour}' d='{bars}'/>")
        out.append(_segments(g, px, py, colour))
        label = f"M{g.machine + 1}" + (f", batch {g.batch_size}" if several_batches else "")
        out.append(
            f"<g fill='{colour}'>"
            + "".join(
                f"<circle cx='{px(p.x):.1f}' cy='{py(p.median):.1f}' r='2'><title>run {p.x + 1} {commit_text(p.run)} "
                f"{_day(p.run)} {label}: {_number(p.median)} ({_number(p.low)}-{_number(p.high)})</title></circle>"
                for p in g.points
            )
            + "</g>"
        )
    for c in (c for g in series.groups for c in g.changes):
        x = (px(c.good.x) + px(c.bad.x)) / 2
        index = result.changes.index(c)
        out.append(
            f"<a href='#change-{index}'><line class='cp' x1='{x:.1f}' x2='{x:.1f}' y1='{TOP}' "
            f"y2='{HEIGHT - BOTTOM}'><title>{_e(_change_title(c))}</title></line>"
            f"<text class='cpl' x='{x + 2:.1f}' y='{TOP + 8}'>{c.step.ratio - 1:+.1%}</text></a>"
        )
    out.append("</svg>")
    noise = ", ".join(
        f"M{g.machine + 1} noise {g.noise:.1%}" + ("" if g.searched else ", not searched") for g in series.groups
    )
    return f"<div class='chart'><p><b>{_e(METRICS[series.metric])}</b> {noise}</p>{''.join(out)}</div>"


def _y_range(points: list[Point]) -> tuple[float, float]:
    """The medians' range, widened to the spread bars by at most that range again on each side:
    a noisy test's round-to-round spread must not flatten its medians into a line."""
    medians = [p.median for p in points]
    low, high = min(medians), max(medians)
    span = (high - low) or abs(high) * 0.01 or 1.0
    return max(min(p.low for p in points), low - span), min(max(p.high for p in points), high + span)


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _segments(group: Group, px: Callable[[float], float], py: Callable[[float], float], colour: str) -> str:
    cuts = [0] + [c.step.at for c in group.changes] + [len(group.points)]
    path = ""
    for start, end in itertools.pairwise(cuts):
        level = float(np.median([p.median for p in group.points[start:end]]))
        path += f"M{px(group.points[start].x):.1f} {py(level):.1f}H{px(group.points[end - 1].x):.1f}"
    return f"<path class='seg' stroke='{colour}' d='{path}'/>"


def _change_title(c: Change) -> str:
    commands = confirm_commands(c) or [why_no_commands(c)]
    return (
        f"{size_text(c)} {'slower' if c.slower else 'faster'}, p={c.step.p:.2g}, noise {c.noise:.1%}; "
        f"last good {commit_text(c.good.run)} (run {c.good.x + 1}), first bad {commit_text(c.bad.run)} "
        f"(run {c.bad.x + 1}); " + "; ".join(commands)
    )


def _runs_table(result: Trends) -> str:
    rows = []
    for model in dict.fromkeys(r.model for r in result.runs):
        for x, run in enumerate(result.model_runs(model)):
            rows.append(
                f"<tr><td>{_e(model)}</td><td class='n'>{x + 1}</td><td><code>{_e(commit_text(run))}</code>"
                f"</td><td>{_when_text(run.commit_time)}</td><td>{_when_text(run.saved_at)}</td>"
                f"<td>M{result.machines.index(run.machine) + 1}</td><td>{_e(run.path.name)}</td></tr>"
            )
    return (
        "<details><summary><b>Runs</b> (commit order)</summary><table><tr><th>model</th><th>run</th>"
        "<th>commit</th><th>commit time</th><th>run time</th><th>machine</th><th>file</th></tr>"
        + "".join(rows)
        + "</table></details>"
    )


def tests_of(runs: Iterable[RunPoint]) -> list[str]:
    """Test names in the order the suite runs them (first seen, oldest run first)."""
    return list(dict.fromkeys(t for r in runs for t in r.tests))
