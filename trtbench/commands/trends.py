"""trends: the series of every test and metric over the saved runs of a folder, in commit
order and per machine, with the steps found in them; writes trends.html and trends.md and
prints the summary.

Exit status: 0 written (whether or not a change was found), 3 written but no series had
--min-runs runs to be searched (can't tell), 2 refused or unusable input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from trtbench import trends
from trtbench.cli import EXIT_OK, EXIT_UNCLEAR, Unusable, writing


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "storage",
        metavar="STORAGE",
        type=Path,
        help="folder of saved runs (every *.json below it), e.g. .benchmarks or the benchmark-history branch",
    )
    parser.add_argument(
        "--out",
        metavar="FOLDER",
        type=Path,
        default=Path("trends"),
        help="where to write trends.html and trends.md (default: trends)",
    )
    parser.add_argument(
        "--metric",
        action="append",
        default=[],
        metavar="METRIC",
        help=f"a metric to show, repeatable: {', '.join(trends.METRICS)} (default: all)",
    )
    parser.add_argument(
        "-k",
        "--test",
        action="append",
        default=[],
        metavar="PATTERN",
        help="a test name or fnmatch pattern, repeatable (default: every test)",
    )
    parser.add_argument(
        "--min-runs",
        type=int,
        default=trends.DEFAULT_MIN_RUNS,
        metavar="N",
        help="a machine's series with fewer runs is drawn, not searched for changes "
        f"(default {trends.DEFAULT_MIN_RUNS}, at least {2 * trends.MIN_SEGMENT})",
    )


def run(args: argparse.Namespace) -> int:
    metrics = _metrics(args.metric)
    least = 2 * trends.MIN_SEGMENT
    if args.min_runs < least:
        raise Unusable(
            f"--min-runs {args.min_runs}: too few; allowed: {least} or more "
            f"({trends.MIN_SEGMENT} runs on each side of a change)"
        )
    if not args.storage.is_dir():
        raise Unusable(f"STORAGE {args.storage}: not a folder; give the folder of saved runs (e.g. .benchmarks)")
    runs, left_out = trends.read_storage(args.storage)
    if not runs:
        why = f"; {left_out[0]}" + (f" (and {len(left_out) - 1} more)" if len(left_out) > 1 else "") if left_out else ""
        raise Unusable(f"STORAGE {args.storage}: no usable saved run among its {len(left_out)} JSON file(s){why}")
    known = trends.tests_of(runs)
    if args.test and not any(trends.matches(t, args.test) for t in known):
        raise Unusable(
            f"-k {' '.join(args.test)}: matches none of the {len(known)} tests of {args.storage} "
            f"(e.g. {known[0]}); give a test name or an fnmatch pattern such as '*cuda_graph*'"
        )
    result = trends.trends(runs, left_out, metrics, args.test, args.min_runs)
    summary = trends.markdown(result)
    with writing("--out", args.out):
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "trends.html").write_text(trends.page(result), encoding="utf-8")
        (args.out / "trends.md").write_text(summary, encoding="utf-8")
    print(summary, end="")
    print(f"\nwritten: {args.out / 'trends.html'}, {args.out / 'trends.md'}")
    return EXIT_UNCLEAR if trends.searched_nothing(result) else EXIT_OK  # searched nothing: no change either


def _metrics(given: list[str]) -> list[str]:
    unknown = [m for m in given if m not in trends.METRICS]
    if unknown:
        raise Unusable(f"--metric {unknown[0]}: not a metric; allowed: {', '.join(trends.METRICS)}")
    return list(dict.fromkeys(given)) or list(trends.METRICS)
