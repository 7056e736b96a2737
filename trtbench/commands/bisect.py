"""Find the first commit where a test got slower, each step an A/B decision.

    trtbench bisect --good v1.2 --bad HEAD -k cuda_graph --metric compute -- --backend torch

First the good and the bad commit are compared (the regression must be there to be found);
then, as git bisect and asv's `find` do, the commits between them are halved: each step
compares the good commit (A) with the middle one (B) in alternating processes, as
`trtbench ab` does, for the one test and metric. A step counts as slow when it carries
more than half the slowdown found between good and bad (asv's `find` asks the same: nearer
the bad value or the good one), and never less than the smallest change that counts. A
step that cannot decide within its budget stops the search with the range still left,
never a guess.

Exit status: 0 found (the first slow commit is printed), 2 refused (a commit that is not
of this suite, no regression between good and bad, a failed process), 3 can't tell.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable, Sequence
from pathlib import Path

from trtbench import ab, checkouts
from trtbench.cli import EXIT_OK, EXIT_UNCLEAR, Unusable
from trtbench.commands.ab import (
    add_gate_arguments,
    cache_folder,
    check_gate_arguments,
    environment,
    plan_for,
    select_tests,
)
from trtbench.settings import GATED, Settings

ACCEPTS_PASSTHROUGH = True  # arguments after -- go to every benchmark process (pytest)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--good", required=True, metavar="REV", help="a commit where the test was fast")
    parser.add_argument("--bad", required=True, metavar="REV", help="a later commit where it is slow")
    parser.add_argument("--metric", choices=list(GATED), default="wall", help="the metric that got slower")
    parser.add_argument(
        "--min-change",
        type=float,
        default=None,
        metavar="FRACTION",
        help="the smallest slowdown that counts, e.g. 0.02 for a regression of about 3%% "
        "(default: the [ab] table of --thresholds)",
    )
    add_gate_arguments(parser)
    parser.set_defaults(budget=5.0)


def run(args: argparse.Namespace) -> int:
    check_gate_arguments(args)
    if not args.selection:
        raise Unusable("-k: name the test that regressed (bisect follows one test)")
    settings = Settings.load(args.thresholds)
    if args.min_change is not None:
        if not 0 < args.min_change < 10:
            raise Unusable(f"--min-change {args.min_change:g}: give a fraction such as 0.02")
        settings = dataclasses.replace(settings, ab={m: {"default": args.min_change} for m in settings.ab})
    env = environment(args.env, "--env")
    repo = checkouts.repository(Path.cwd())
    good = checkouts.commit(repo, args.good, "--good")
    bad = checkouts.commit(repo, args.bad, "--bad")
    between = checkouts.commits_between(repo, good, bad)
    if not between:
        raise Unusable(f"--good {args.good} and --bad {args.bad} are the same commit: nothing to bisect")
    steps: list[str] = []
    with checkouts.worktrees(repo, cache_folder(args, repo) / "ab-worktrees") as trees:
        base = trees.checkout(good, "A")
        first = trees.checkout(bad, "B")
        tests = select_tests(base, first, args, {"A": env, "B": env})
        if len(tests) != 1:
            raise Unusable(
                f"-k {args.selection!r} selects {len(tests)} tests: bisect follows exactly one "
                f"({', '.join(t.rsplit('::', 1)[-1] for t in tests[:4])}{' ...' if len(tests) > 4 else ''})"
            )

        def step(sha: str, judged_by: Settings) -> ab.Row:
            """One A/B of good against ``sha``, printed as a step."""
            head = trees.checkout(sha, "B")
            out = args.out / f"step{len(steps) + 1}-{sha[:12]}"
            plan = dataclasses.replace(plan_for(args, repo, tests, {"A": env, "B": env}, out), metrics=(args.metric,))
            gate = ab.Gate(base, head, plan)
            ab.run_gate(gate, judged_by, say=lambda line: print(f"  {line}"))
            ab.write_outputs(gate, None)
            row = next((r for r in gate.rows if r.metric == args.metric), None)
            if row is None:
                raise Unusable(f"{tests[0]}: no {args.metric} values to decide on")
            steps.append(
                f"{sha[:12]} vs good: {row.verdict} ({row.decision.change:+.1%}, "
                f"interval {row.decision.ci[0]:+.1%}..{row.decision.ci[1]:+.1%}; "
                f"slow past {row.decision.threshold:+.1%})"
            )
            print(f"step {len(steps)}: {steps[-1]}")
            return row

        first_row = step(bad, settings)
        if first_row.verdict == "can't tell":
            print(f"can't tell whether {args.bad} is slower than {args.good} within --budget {args.budget:g} min")
            return EXIT_UNCLEAR
        if first_row.verdict != "REGRESSION":
            raise Unusable(f"{args.bad} is not slower than {args.good} in {tests[0]} {args.metric}: nothing to bisect")
        judged_by = step_settings(settings, first_row.decision.change)

        def slower(sha: str) -> bool | None:
            """Whether ``sha`` carries the slowdown (None: can't tell)."""
            return {"REGRESSION": True, "can't tell": None}.get(step(sha, judged_by).verdict, False)

        found = first_slow(between, slower)
        if isinstance(found, list):
            print(
                f"can't tell at {steps[-1][:12]}: the first slow commit is one of " + ", ".join(c[:12] for c in found)
            )
            return EXIT_UNCLEAR
    subject = checkouts.git(repo, "log", "-1", "--format=%s", found)
    print(f"\nfirst slow commit: {found} {subject}\n" + "\n".join(f"  {s}" for s in steps))
    return EXIT_OK


def step_settings(settings: Settings, found_change: float) -> Settings:
    """The settings of the steps between good and bad: every A/B threshold raised to half the
    slowdown found between them (on the ratio's log scale) where that is larger."""
    half = math.sqrt(1 + found_change) - 1
    return dataclasses.replace(
        settings, ab={m: {k: max(v, half) for k, v in table.items()} for m, table in settings.ab.items()}
    )


def first_slow(commits: Sequence[str], slower: Callable[[str], bool | None]) -> str | list[str]:
    """The first of ``commits`` (oldest first, the last one slow) that ``slower`` finds slow,
    halving the range each step; the range still left when a step cannot tell."""
    low, high = 0, len(commits) - 1
    while low < high:
        middle = (low + high) // 2
        verdict = slower(commits[middle])
        if verdict is None:
            return list(commits[low : high + 1])
        if verdict:
            high = middle
        else:
            low = middle + 1
    return commits[low]
