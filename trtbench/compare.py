"""Compare two saved runs per test and metric, and the table of the verdicts.

Per test, two metrics are decided on their per-round samples: ``wall`` (end-to-end time
per batch) and ``compute`` (GPU time of the engine's work per batch, CUDA events; for an
approach whose batches overlap, the GPU's busy time over the round per batch instead). A
regression needs both a change past the test's threshold (``trtbench.settings``) and a
significant Mann-Whitney test (``trtbench.stats``).

Runs of another GPU model, TensorRT version or model are refused, never compared; so is
a run that measured nothing, and a test the old run measured that the new one lacks
(unless named as deselected on purpose).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import statistics
from collections.abc import Iterable, Sequence

from trtbench.cli import EXIT_OK, EXIT_REGRESSION, EXIT_UNCLEAR
from trtbench.runs import IDENTITY, THRESHOLD_IDENTITY, SavedRun, TestRecord
from trtbench.settings import GATED, Refused, Settings, threshold_for
from trtbench.stats import Decision, decide

# trtexec's rule (samples/common/sampleReporting.cpp): enqueue time above 0.8 x GPU compute
# time means the GPU waits for the host, so "GPU compute" then times the host's launches
ENQUEUE_BOUND = 0.8


@dataclasses.dataclass(frozen=True)
class Row:
    name: str
    metric: str
    decision: Decision
    threshold_source: str

    @property
    def verdict(self) -> str:
        return self.decision.verdict


def check_comparable(old: SavedRun, new: SavedRun) -> None:
    for field in IDENTITY:
        a, b = old.machine.get(field, "unknown"), new.machine.get(field, "unknown")
        if a != b:
            raise Refused(
                f"refusing to compare: {field} differs ({old.path.name}: {a!r}, {new.path.name}: {b!r}); "
                "compare runs of the same GPU model, TensorRT version and model"
            )
    for name in old.tests.keys() & new.tests.keys():
        if old.tests[name].batch_size != new.tests[name].batch_size:
            raise Refused(
                f"refusing to compare {name}: batch size {old.tests[name].batch_size} vs {new.tests[name].batch_size}"
            )


def compare(
    old: SavedRun,
    new: SavedRun,
    settings: Settings,
    history: Sequence[SavedRun] = (),
    allow_missing: Iterable[str] = (),
) -> list[Row]:
    """Decide every gated metric of every test both runs measured. ``history``: earlier
    runs of the same GPU (``old`` among them) for the thresholds."""
    check_comparable(old, new)
    for run in (old, new):
        run.measured()
    patterns = list(allow_missing)
    missing = sorted(
        n for n in old.tests.keys() - new.tests.keys() if not any(n == p or fnmatch.fnmatchcase(n, p) for p in patterns)
    )  # names hold [ ]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise Refused(
            f"{new.path.name} lacks {len(missing)} test(s) that {old.path.name} measured: {shown}; "
            "if they were deselected on purpose, name them with --allow-missing PATTERN"
        )
    comparable = threshold_history(new, history, settings)
    rows = []
    for name in sorted(old.tests.keys() & new.tests.keys()):
        for metric in GATED:
            a, b = old.tests[name].gated(metric), new.tests[name].gated(metric)
            if not a or not b:
                continue
            threshold, source = threshold_for(name, metric, settings, comparable)
            if metric == "compute" and (enqueue_bound(old.tests[name]) or enqueue_bound(new.tests[name])):
                wall, wall_source = threshold_for(name, "wall", settings, comparable)
                if wall > threshold:  # its GPU time follows the host: judged with the host's noise
                    threshold, source = wall, f"wall's, enqueue-bound; {wall_source}"
            rows.append(Row(name, metric, decide(a, b, threshold, settings.alpha), source))
    if not rows:
        raise Refused(
            f"{old.path.name} and {new.path.name} measured no metric of any test in common: nothing to compare"
        )
    return rows


def threshold_history(new: SavedRun, history: Sequence[SavedRun], settings: Settings) -> list[SavedRun]:
    """The runs of ``history`` that thresholds for ``new`` come from: the newest
    ``history_window`` of the same GPU, TensorRT, model and weights, ``new`` itself excluded."""
    same = [r for r in history if r.path != new.path and r.same(new, THRESHOLD_IDENTITY)]
    return same[-settings.history_window :]


def enqueue_bound(test: TestRecord) -> bool:
    """trtexec's warning: the host's enqueue takes more than 0.8 x the GPU compute time."""
    enqueue, compute = test.samples.get("enqueue"), test.samples.get("compute")
    return bool(enqueue and compute) and statistics.median(enqueue) > ENQUEUE_BOUND * statistics.median(compute)


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
    return (
        f"{row.name} {GATED[row.metric]} {d.old_median:.3f} -> {d.new_median:.3f} ms ({d.change:+.1%}, "
        f"threshold {d.threshold:.1%} from {row.threshold_source}; {d.reason})"
    )


def table(header: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool = False) -> str:
    """Rows of cells as aligned text, or as a markdown table (a job summary)."""
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in rows])
    cells = [list(header)] + [list(r) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def format_table(rows: list[Row], markdown: bool = False) -> str:
    header = ["test", "metric", "old ms", "new ms", "change", "threshold", "p (Mann-Whitney)", "verdict"]

    def cells(r: Row) -> list[str]:
        d = r.decision
        p = "-" if d.p_value is None else f"{d.p_value:.2g}"
        return [
            r.name,
            r.metric,
            f"{d.old_median:.3f}",
            f"{d.new_median:.3f}",
            f"{d.change:+.1%}",
            f"{d.threshold:.1%} ({r.threshold_source})",
            p,
            d.verdict,
        ]

    return table(header, [cells(r) for r in rows], markdown)
