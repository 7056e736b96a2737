"""The A/B gate: two versions of the suite measured in one job, in alternating processes.

History from other processes drifts (the host's state differs between processes minutes
apart), so thresholds against history must be wide. Here the two versions run on the same
machine in the same job, in processes that alternate A B B A A B ..., so slow drift falls on
both sides alike; what is left is each process's own level, so every process gives one
value per test and metric (the median of its rounds) and the decision is on those values
(``trtbench.stats.decide_ab``). Pairs of processes are added while a metric is undecided,
up to a time budget; what the budget cannot decide is "can't tell", never a guess.

Nothing here imports the GPU half: the processes are runs of ``pytest benchmarks`` in each
version's own checkout, and what they leave are saved runs (``trtbench.runs``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from trtbench.catalogue import approach, approach_of
from trtbench.checkouts import Checkout
from trtbench.cli import EXIT_OK, EXIT_REGRESSION, EXIT_UNCLEAR, Unusable, read_json
from trtbench.compare import enqueue_bound, table
from trtbench.runs import Malformed, SavedRun
from trtbench.settings import GATED, Settings
from trtbench.stats import ABDecision, decide_ab

DEFAULT_SELECTION = "test_approach and not test_sweep"  # the approaches (-k matches the module test_approaches too)
ROUNDS, WARMUP_ROUNDS = 15, 3  # per process, unless the arguments for pytest say otherwise
SUMMARY = "ab.json"


@dataclasses.dataclass(frozen=True)
class Plan:
    tests: tuple[str, ...]  # pytest node ids, run on both sides
    budget_s: float  # time for the processes, all pairs together
    min_pairs: int
    max_pairs: int
    pytest_args: tuple[str, ...]  # for every process (after the gate's own)
    cache: Path  # engines and references, keyed by content: shared by both sides
    out: Path
    env: dict[str, dict[str, str]]  # side label -> variables set for its processes only
    metrics: tuple[str, ...] = tuple(GATED)  # what is decided (bisect follows one)


@dataclasses.dataclass(frozen=True)
class Row:
    test: str
    metric: str
    decision: ABDecision

    @property
    def verdict(self) -> str:
        return self.decision.verdict


@dataclasses.dataclass
class Gate:
    """What a gate measured so far and decided."""

    base: Checkout
    head: Checkout
    plan: Plan
    runs: dict[str, list[SavedRun]] = dataclasses.field(default_factory=lambda: {"A": [], "B": []})
    pair_seconds: list[float] = dataclasses.field(default_factory=list)
    rows: list[Row] = dataclasses.field(default_factory=list)
    stopped_by: str = ""  # why no more pairs were added
    selected: tuple[str, ...] = ()  # every test of the gate, when this one runs a shard of them

    @property
    def pairs(self) -> int:
        return min(len(self.runs["A"]), len(self.runs["B"]))


def side_order(pair: int) -> tuple[str, str]:
    """A B, then B A, then A B ...: over two pairs each side runs first once and last once."""
    return ("A", "B") if pair % 2 == 0 else ("B", "A")


def process_command(checkout: Checkout, tests: Sequence[str], out_json: Path, plan: Plan) -> list[str]:
    """One process of a side. Values go as --option=value and the rootdir is named: pytest takes
    any argument that is an existing path into its choice of rootdir, and a shared cache
    folder outside the checkout would move it there."""
    args = list(plan.pytest_args)
    given = {a.split("=")[0] for a in args if a.startswith("--")}
    own = [f"--rootdir={checkout.root}", f"--benchmark-json={out_json}"]
    own += [f"--rounds={ROUNDS}"] if "--rounds" not in given else []
    own += [f"--warmup-rounds={WARMUP_ROUNDS}"] if "--warmup-rounds" not in given else []
    own += [f"--engine-cache-dir={plan.cache / 'engines'}"] if "--engine-cache-dir" not in given else []
    own += [f"--reference-cache-dir={plan.cache / 'reference'}"] if "--reference-cache-dir" not in given else []
    return [sys.executable, "-m", "pytest", *tests, "-p", "no:cacheprovider", "-rs", *own, *args]


def process_env(checkout: Checkout, extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(checkout.root), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def collect(checkout: Checkout, selection: str, plan_args: Sequence[str], env: dict[str, str]) -> list[str]:
    """The node ids the selection picks in a checkout's benchmarks."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        "benchmarks/test_approaches.py",
        "--collect-only",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--rootdir={checkout.root}",
        "-k",
        selection,
        *plan_args,
    ]
    done = subprocess.run(
        command, cwd=checkout.root, env=process_env(checkout, env), capture_output=True, text=True, timeout=600
    )
    ids = [line.strip() for line in done.stdout.splitlines() if "::" in line and not line.startswith(" ")]
    if done.returncode not in (0, 5) or (done.returncode == 0 and not ids):
        raise Unusable(
            f"{checkout.label} ({checkout.describe()}): collecting the benchmarks failed (pytest exit "
            f"{done.returncode}): {_last_line(done.stdout + done.stderr)}"
        )
    return [node for node in ids if runnable(node)]


def runnable(node_id: str) -> bool:
    """Whether a test id is a case its backend can run (multi_profile is TensorRT only; the
    sweep's placeholder without --batch-sweep measures nothing)."""
    if node_id.endswith("-none]"):
        return False
    match = re.search(r"\[([a-z]+)-", node_id)
    try:
        return not (match and approach(approach_of(node_id)).unsupported(match.group(1)))
    except KeyError:
        return True  # not an approach of the catalogue: the process will say


def _last_line(text: str) -> str:
    lines = [x.strip() for x in text.splitlines() if x.strip() and not set(x.strip()) <= set("=-_ ")]
    errors = [x for x in lines if x.startswith(("ERROR", "E ", "FAILED")) or "Error" in x]
    return (errors or lines or ["(no output)"])[-1][:400]


def run_process(checkout: Checkout, number: int, plan: Plan, timeout_s: float) -> SavedRun:
    """One process of one side; its saved run, every selected test measured, else Unusable."""
    folder = plan.out / checkout.label
    folder.mkdir(parents=True, exist_ok=True)
    out_json = folder / f"{number:04d}_{checkout.label}.json"
    log = folder / f"{number:04d}_{checkout.label}.log"
    with open(log, "w") as stream:
        try:
            done = subprocess.run(
                process_command(checkout, plan.tests, out_json, plan),
                cwd=checkout.root,
                env=process_env(checkout, plan.env.get(checkout.label, {})),
                stdout=stream,
                stderr=subprocess.STDOUT,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            raise Unusable(
                f"{checkout.label} process {number} ({checkout.describe()}) ran past {timeout_s:.0f} s; log: {log}"
            ) from None
    text = log.read_text(errors="replace")
    if done.returncode != 0:
        raise Unusable(
            f"{checkout.label} process {number} ({checkout.describe()}) failed (pytest exit "
            f"{done.returncode}): {_last_line(text)}; log: {log}"
        )
    names = sorted({_name(t) for t in plan.tests})
    if not out_json.is_file():  # pytest-benchmark writes no run when every test skipped
        missing = names
    else:
        try:
            run = SavedRun.load(out_json)
        except Malformed as exc:
            raise Unusable(f"{checkout.label} process {number}: {exc}; log: {log}") from None
        missing = sorted(set(names) - set(run.tests))
    if missing:
        skips = [x.strip() for x in text.splitlines() if x.startswith("SKIPPED")]
        why = f" ({skips[0]})" if skips else ""
        raise Unusable(
            f"{checkout.label} process {number} ({checkout.describe()}) measured nothing of "
            f"{', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}{why}; log: {log}"
        )
    return run


def _name(node_id: str) -> str:
    return node_id.rsplit("::", 1)[-1]


def decide(gate: Gate, settings: Settings) -> list[Row]:
    """Every gated metric of every test, on the processes measured so far."""
    rows = []
    for node in gate.plan.tests:
        name = _name(node)
        a_tests = [r.tests[name] for r in gate.runs["A"]]
        b_tests = [r.tests[name] for r in gate.runs["B"]]
        for metric in gate.plan.metrics:
            a = [statistics.median(s) for t in a_tests if (s := t.gated(metric))]
            b = [statistics.median(s) for t in b_tests if (s := t.gated(metric))]
            if len(a) < len(a_tests) or len(b) < len(b_tests) or not a:
                continue  # not recorded by one version (e.g. a metric added since): not judged
            threshold = settings.ab_threshold(name, metric)
            if metric == "compute" and any(enqueue_bound(t) for t in a_tests[:1] + b_tests[:1]):
                # the GPU waits for the host's launches: its time is host time, judged as the wall is
                threshold = max(threshold, settings.ab_threshold(name, "wall"))
            rows.append(Row(name, metric, decide_ab(a, b, threshold, settings.ab_alpha, settings.ab_ok_alpha)))
    return rows


def undecided(rows: Sequence[Row]) -> list[Row]:
    return [r for r in rows if r.verdict == "can't tell"]


def run_gate(gate: Gate, settings: Settings, say: Callable[[str], None] = print) -> Gate:
    """Add pairs of processes until every metric is decided, the pairs run out or the budget does."""
    plan = gate.plan
    started = time.monotonic()
    checkouts = {"A": gate.base, "B": gate.head}
    while True:
        pair = gate.pairs
        pair_started = time.monotonic()
        longest = max(gate.pair_seconds, default=plan.budget_s)
        for label in side_order(pair):
            run = run_process(checkouts[label], pair + 1, plan, timeout_s=max(600.0, 3 * longest))
            gate.runs[label].append(run)
        gate.pair_seconds.append(time.monotonic() - pair_started)
        elapsed = time.monotonic() - started
        mean_pair = statistics.mean(gate.pair_seconds)
        if pair == 0 and mean_pair * plan.min_pairs > plan.budget_s:
            raise Unusable(
                f"--budget {plan.budget_s / 60:g} min is too small to decide: a pair of processes took "
                f"{mean_pair:.0f} s and a decision needs at least {plan.min_pairs} pairs; give --budget "
                f"{mean_pair * plan.min_pairs / 60 * 1.2:.0f} or more, or select fewer tests"
            )
        gate.rows = decide(gate, settings)
        if not gate.rows:
            raise Unusable(
                "no gated metric (wall, GPU compute) of the selected tests was recorded by both versions: "
                "nothing to judge"
            )
        open_rows = undecided(gate.rows)
        say(
            f"pair {gate.pairs} ({' '.join(side_order(pair))}): {gate.pair_seconds[-1]:.0f} s; "
            f"{len(open_rows)} of {len(gate.rows)} metrics undecided"
        )
        if gate.pairs >= plan.min_pairs and not open_rows:
            gate.stopped_by = "every metric decided"
        elif gate.pairs >= plan.max_pairs:
            gate.stopped_by = f"--max-pairs {plan.max_pairs} reached"
        elif gate.pairs >= plan.min_pairs and elapsed + mean_pair > plan.budget_s:
            gate.stopped_by = f"--budget {plan.budget_s / 60:g} min reached"
        else:
            continue
        return gate


def exit_status(rows: Sequence[Row]) -> int:
    if any(r.verdict == "REGRESSION" for r in rows):
        return EXIT_REGRESSION
    return EXIT_UNCLEAR if undecided(rows) else EXIT_OK


HEADER = ["test", "metric", "A ms", "B ms", "change", "interval", "p", "threshold", "processes", "verdict"]


def cells(row: Row) -> list[str]:
    d = row.decision
    interval = "-" if d.ci[0] != d.ci[0] else f"{d.ci[0]:+.1%}..{d.ci[1]:+.1%}"
    p = "-" if d.p_value != d.p_value else f"{d.p_value:.2g}"
    return [
        row.test,
        row.metric,
        f"{statistics.median(d.a_values):.3f}",
        f"{statistics.median(d.b_values):.3f}",
        f"{d.change:+.1%}",
        interval,
        p,
        f"{d.threshold:.1%}",
        f"{len(d.a_values)}+{len(d.b_values)}",
        d.verdict,
    ]


def format_rows(rows: Sequence[Row], markdown: bool = False) -> str:
    return table(HEADER, [cells(r) for r in rows], markdown)


def verdict_line(rows: Sequence[Row]) -> str:
    bad = [r for r in rows if r.verdict == "REGRESSION"]
    if bad:
        return f"{len(bad)} regression(s): " + "; ".join(f"{r.test} {r.metric} {r.decision.reason}" for r in bad)
    open_rows = undecided(rows)
    if open_rows:
        return f"can't tell {len(open_rows)} metric(s) within the budget: " + "; ".join(
            f"{r.test} {r.metric}: {r.decision.reason}" for r in open_rows
        )
    return "no regression: every metric decided"


# ---------------------------------------------------------------- what a gate leaves


def summary_record(gate: Gate, shard: tuple[int, int] | None) -> dict[str, Any]:
    return {
        "base": gate.base.sha or gate.base.describe(),
        "head": gate.head.sha or gate.head.describe(),
        "shard": list(shard) if shard else None,
        "tests": list(gate.plan.tests),
        "selected": list(gate.selected or gate.plan.tests),
        "pairs": gate.pairs,
        "pair_seconds": gate.pair_seconds,
        "stopped_by": gate.stopped_by,
        "machine": {
            k: v
            for k, v in (gate.runs["A"][0].machine if gate.runs["A"] else {}).items()
            if isinstance(v, (str, int, float))
        },
        "rows": [
            {
                "test": r.test,
                "metric": r.metric,
                "verdict": r.verdict,
                "change": r.decision.change,
                "ci": list(r.decision.ci),
                "p": r.decision.p_value,
                "threshold": r.decision.threshold,
                "a": list(r.decision.a_values),
                "b": list(r.decision.b_values),
            }
            for r in gate.rows
        ],
    }


def rows_of(record: dict[str, Any]) -> list[Row]:
    return [
        Row(
            r["test"],
            r["metric"],
            ABDecision(r["verdict"], r["change"], tuple(r["ci"]), r["p"], r["threshold"], tuple(r["a"]), tuple(r["b"])),
        )
        for r in record["rows"]
    ]


def markdown(gate: Gate, rows: Sequence[Row], picture: str | None) -> str:
    lines = [
        f"## A/B: {gate.base.describe()} (A) vs {gate.head.describe()} (B)",
        "",
        f"{gate.pairs} pairs of processes, alternating A B B A ...; {gate.stopped_by}; "
        f"{sum(gate.pair_seconds) / 60:.1f} min.",
        "",
        format_rows(rows, markdown=True),
        "",
        verdict_line(rows),
        "",
    ]
    if picture:
        lines += [f"![per-process values]({picture})", ""]
    return "\n".join(lines)


def render_picture(rows: Sequence[Row], path: Path, title: str) -> None:
    """Each process's value of both sides, per test and metric, as a change from A's median."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tests = list(dict.fromkeys(r.test for r in rows))
    metrics = list(dict.fromkeys(r.metric for r in rows))
    fig, axes = plt.subplots(
        len(tests), len(metrics), figsize=(5.2 * len(metrics), 1.25 + 1.05 * len(tests)), squeeze=False, sharex="col"
    )
    by_key = {(r.test, r.metric): r for r in rows}
    colors = {"ok": "#55a868", "faster": "#4c72b0", "REGRESSION": "#c44e52", "can't tell": "#dd8452"}
    for i, test in enumerate(tests):
        for j, metric in enumerate(metrics):
            ax = axes[i, j]
            row = by_key.get((test, metric))
            if row is None:
                ax.set_axis_off()
                continue
            d = row.decision
            ref = statistics.median(d.a_values)
            for y, values, color in ((1, d.a_values, "#8c8c8c"), (0, d.b_values, colors[d.verdict])):
                ax.scatter([100 * (v / ref - 1) for v in values], [y] * len(values), s=14, color=color, zorder=3)
            ax.axvline(0, color="#8c8c8c", linewidth=0.8)
            ax.axvspan(-100 * d.threshold, 100 * d.threshold, color="#eeeeee", zorder=0)
            ax.set_yticks([0, 1], ["B", "A"], fontsize=7)
            ax.set_ylim(-0.7, 1.7)
            ax.tick_params(axis="x", labelsize=7)
            ax.set_title(
                f"{test.removeprefix('test_approach')} {metric}: {d.verdict} {d.change:+.1%}",
                fontsize=8,
                loc="left",
                color=colors[d.verdict],
            )
    for j in range(len(metrics)):
        axes[-1, j].set_xlabel("% from A's median (one dot per process; grey band: the threshold)", fontsize=8)
    fig.suptitle(title, fontsize=10, x=0.01, ha="left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_outputs(gate: Gate, shard: tuple[int, int] | None) -> list[Path]:
    """ab.json (for merging shards), ab.md (a job summary) and ab.png in the output folder."""
    out = gate.plan.out
    out.mkdir(parents=True, exist_ok=True)
    written = []
    picture = None
    if gate.rows:
        render_picture(
            gate.rows, out / "ab.png", f"A {gate.base.describe()} vs B {gate.head.describe()}: {gate.pairs} pairs"
        )
        picture = "ab.png"
        written.append(out / "ab.png")
    (out / SUMMARY).write_text(json.dumps(summary_record(gate, shard), indent=1))
    (out / "ab.md").write_text(markdown(gate, gate.rows, picture))
    return [out / SUMMARY, out / "ab.md", *written]


def write_refusal(out: Path, shard: tuple[int, int] | None, reason: str) -> None:
    """A shard that could not decide says so, so that the merge refuses instead of passing."""
    out.mkdir(parents=True, exist_ok=True)
    (out / SUMMARY).write_text(json.dumps({"shard": list(shard) if shard else None, "refused": reason}))


def parse_shard(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)/(\d+)", text)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise Unusable(f"--shard {text}: give I/N with 1 <= I <= N, such as 2/4")
    return int(match.group(1)), int(match.group(2))


ROW_KEYS = ("test", "metric", "verdict", "change", "ci", "p", "threshold", "a", "b")


def _shard_record(path: Path) -> dict[str, Any]:
    """One shard's summary, checked: Unusable says what is wrong with it."""
    record = read_json(path)
    if not isinstance(record, dict) or "shard" not in record:
        raise Unusable(f"{path}: not the summary of an A/B shard ({SUMMARY})")
    if record.get("refused"):
        raise Unusable(f"{path}: shard {record['shard']} could not decide: {record['refused']}")
    if not record["shard"]:
        raise Unusable(f"{path}: not a shard (made without --shard)")
    shard = record["shard"]
    if not (
        isinstance(shard, list)
        and len(shard) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) for n in shard)
        and 1 <= shard[0] <= shard[1]
    ):
        raise Unusable(f"{path}: shard {shard!r} is not [I, N] with 1 <= I <= N")
    rows = record.get("rows")
    if not isinstance(rows, list) or not all(isinstance(r, dict) and set(ROW_KEYS) <= r.keys() for r in rows):
        raise Unusable(f"{path}: its rows are not those of an A/B shard (each needs {', '.join(ROW_KEYS)})")
    if not rows:
        raise Unusable(f"{path}: shard {shard[0]}/{shard[1]} judged nothing")
    if not all(isinstance(record.get(k), str) for k in ("base", "head")):
        raise Unusable(f"{path}: names no base and head versions")
    return record


def merge(paths: Sequence[Path]) -> tuple[list[dict[str, Any]], list[Row]]:
    """The shards' records and their rows as one verdict; a missing, refused or foreign shard is refused."""
    records = [_shard_record(path) for path in paths]
    if not records:
        raise Unusable("--merge: no shard summaries given")
    total = records[0]["shard"][1]
    numbers = sorted(r["shard"][0] for r in records)
    if any(r["shard"][1] != total for r in records) or len(set(numbers)) != len(numbers):
        raise Unusable(f"--merge: shards of different splits or given twice: {[r['shard'] for r in records]}")
    missing = sorted(set(range(1, total + 1)) - set(numbers))
    if missing:
        raise Unusable(
            f"--merge: shard(s) {', '.join(f'{m}/{total}' for m in missing)} missing: a missing shard is no pass"
        )
    for record in records[1:]:
        if (record["base"], record["head"]) != (records[0]["base"], records[0]["head"]):
            raise Unusable("--merge: shards compared different commits")
        if record.get("selected") != records[0].get("selected"):
            raise Unusable("--merge: shards of different selections of tests (-k): not one gate")
    rows = [row for record in sorted(records, key=lambda r: r["shard"][0]) for row in rows_of(record)]
    return records, rows
