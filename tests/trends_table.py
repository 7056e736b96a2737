"""The detection table of README's "Trends" section: histories resampled from the real A/A
runs (tests/trends_history.py), with a step planted in every test from one run on, and A/A
histories with nothing planted, each written as saved runs and read back by trtbench.trends.

    python -m tests.trends_table --histories 20 --runs 100 --at 60

Not a test (it takes minutes): the fast checks of the same code are in tests/test_trends.py.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from tests import trends_history as th
from trtbench import trends
from trtbench.compare import case_of

PLANTS = (("compute", 1.03), ("wall", 1.10))


def judged(folder: Path, metrics: list[str]) -> trends.Trends:
    runs, left_out = trends.read_storage(folder)
    return trends.trends(runs, left_out, metrics)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--histories", type=int, default=20)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--at", type=int, default=60, help="0-based index of the first run with the step")
    parser.add_argument("--aa", action=argparse.BooleanOptionalAction, default=True, help="also the A/A histories")
    args = parser.parse_args()
    data = th.samples()
    names = list(data["runs"][0]["tests"])
    print(f"{args.histories} histories of {args.runs} runs each, step from run {args.at + 1} on (1-based)\n")
    print(
        "| test | metric | planted | found at the right run (+-1) | 2-5 runs off | farther | found at (median) "
        "| size (median) | p (median) | noise (median) | smallest step it reports (median) |"
    )
    print("|" + " --- |" * 11)
    for metric, factor in PLANTS:
        found: dict[str, list[trends.Change]] = {n: [] for n in names}
        near = {n: 0 for n in names}
        far = {n: 0 for n in names}
        noise: dict[str, list[float]] = {n: [] for n in names}
        for h in range(args.histories):
            plant = {(n, metric): factor for n in names}
            docs = th.resampled(data, args.runs, seed=1000 + h, plant=plant, plant_at=args.at)
            with tempfile.TemporaryDirectory() as tmp:
                th.write(Path(tmp) / "h200", docs)
                result = judged(Path(tmp), [metric])
            for s in result.series:
                noise[s.test] += [g.noise for g in s.groups]
                for c in (c for g in s.groups for c in g.changes):
                    off = abs(c.bad.x - args.at)
                    if off <= 1:
                        found[s.test].append(c)
                    elif off <= 5:
                        near[s.test] += 1
                    else:
                        far[s.test] += 1
        for n in names:
            hits = found[n]
            noise_median = median(noise[n])
            print(
                f"| {case_of(n)} | {metric} | {factor - 1:+.0%} | "
                f"{len(hits)} of {args.histories} | {near[n]} | {far[n]} | "
                + (
                    f"{median([c.bad.x + 1 for c in hits]):g} | {median([c.step.ratio - 1 for c in hits]):+.1%} | "
                    f"{median([c.step.p for c in hits]):.2g}"
                    if hits
                    else "- | - | -"
                )
                + f" | {noise_median:.2%} | {trends.detectable_step(noise_median):.1%} |"
            )
    if not args.aa:
        return
    reported = 0
    series = 0
    for h in range(args.histories):
        docs = th.resampled(data, args.runs, seed=5000 + h)
        with tempfile.TemporaryDirectory() as tmp:
            th.write(Path(tmp) / "h200", docs)
            result = judged(Path(tmp), list(trends.METRICS))
        reported += len(result.changes)
        series += sum(len(s.groups) for s in result.series)
        for c in result.changes:
            print(f"A/A history {h}: {c.test} {c.metric} at run {c.bad.x + 1}: {trends.size_text(c)}, p={c.step.p:.2g}")
    print(
        f"\nA/A: {args.histories} histories of {args.runs} runs, {series} series (test x metric): "
        f"{reported} change(s) reported"
    )


if __name__ == "__main__":
    main()
