"""Compare two versions of the suite in one job: the A/B gate.

    trtbench ab -- --backend torch                       # merge base with main (A) vs working tree (B)
    trtbench ab --base v1.2 --head HEAD -k fp16 --budget 10 -- --backend torch
    trtbench ab --merge shard1/ab.json shard2/ab.json    # the shards of one gate as one verdict

Each version runs in its own checkout (a git worktree; the working tree as it is for B by
default); engines and references are shared, keyed by content, so neither version's leak
into the other's. Processes alternate A B B A A B ..., each running the selected benchmarks
once; each gives one value per test and metric (the median of its rounds). Per test, wall
time and GPU compute (for approaches whose batches overlap, the GPU's busy time) are
decided on those values: the change of B from A with its interval, Welch's p, and a
verdict: ok, faster, REGRESSION (slower past the threshold of regression.toml's [ab] and
significant) or can't tell. Pairs are added while a metric is undecided, up to --budget.

Written to --out: ab.md (the table, for a job summary), ab.png (each process's value of
both sides), ab.json (the record that --merge reads) and each process's saved run
(A/NNNN_A.json, B/NNNN_B.json: `trtbench compare` and `report` read them) with its log.
Exit status as compare: 0 no regression, 1 regression, 2 refused (a failed process
included), 3 can't tell within the budget.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from trtbench import ab, checkouts
from trtbench.cli import Unusable, writing
from trtbench.settings import DEFAULT_THRESHOLDS, Settings

ACCEPTS_PASSTHROUGH = True  # arguments after -- go to every benchmark process (pytest)
ENV_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.S)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--base",
        default=None,
        metavar="REV",
        help="version A: a commit (default: the merge base of HEAD with the main branch), or a "
        "folder of the suite's sources (then --head is one too, and no git is needed)",
    )
    parser.add_argument(
        "--head",
        default=None,
        metavar="REV",
        help="version B: a commit, or a folder (default: the working tree as it is, uncommitted changes included)",
    )
    add_gate_arguments(parser)
    parser.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="run only every N-th selected test from the I-th: one runner's share of a gate",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        default=None,
        metavar="AB_JSON",
        help="merge the ab.json of every shard of one gate into one verdict (runs nothing)",
    )
    parser.add_argument(
        "--base-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an environment variable for A's processes only",
    )
    parser.add_argument(
        "--head-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an environment variable for B's processes only",
    )


def add_gate_arguments(parser: argparse.ArgumentParser) -> None:
    """What ab and bisect share: the selection, the budget, where things go."""
    parser.add_argument(
        "-k",
        dest="selection",
        default=None,
        metavar="EXPRESSION",
        help=f"pytest -k expression of the benchmarks to compare (default: {ab.DEFAULT_SELECTION}, every approach)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=15.0,
        metavar="MINUTES",
        help="time for the benchmark processes; no pair is started past it (default 15)",
    )
    parser.add_argument("--min-pairs", type=int, default=3, help="pairs of processes before any decision (default 3)")
    parser.add_argument("--max-pairs", type=int, default=20, help="pairs at most (default 20)")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an environment variable for every process (e.g. PYTEST_PLUGINS=...)",
    )
    parser.add_argument("--out", type=Path, default=Path("ab"), help="output folder (default ./ab)")
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="engines and references shared by both versions (default: .cache in the repository)",
    )
    parser.add_argument(
        "--thresholds", type=Path, default=DEFAULT_THRESHOLDS, help="TOML like regression.toml (its [ab] tables)"
    )


def environment(assignments: list[str], option: str) -> dict[str, str]:
    env = {}
    for text in assignments:
        match = ENV_ASSIGNMENT.fullmatch(text)
        if not match:
            raise Unusable(f"{option} {text!r}: give KEY=VALUE")
        env[match.group(1)] = match.group(2)
    return env


def check_gate_arguments(args: argparse.Namespace) -> None:
    if not 0 < args.budget <= 24 * 60:
        raise Unusable(f"--budget {args.budget:g}: give minutes, more than 0 and at most a day")
    if not 2 <= args.min_pairs <= args.max_pairs <= 500:
        raise Unusable(
            f"--min-pairs {args.min_pairs}, --max-pairs {args.max_pairs}: need 2 <= min <= max <= 500 "
            "(a side's spread needs two processes)"
        )
    if args.out.exists() and not args.out.is_dir():
        raise Unusable(f"--out {args.out}: not a folder")


def plan_for(
    args: argparse.Namespace, repo: Path, tests: list[str], env: dict[str, dict[str, str]], out: Path
) -> ab.Plan:
    return ab.Plan(
        tests=tuple(tests),
        budget_s=args.budget * 60,
        min_pairs=args.min_pairs,
        max_pairs=args.max_pairs,
        pytest_args=tuple(args.passthrough),
        cache=cache_folder(args, repo),
        out=out.resolve(),
        env=env,
    )


def select_tests(
    base: checkouts.Checkout, head: checkouts.Checkout, args: argparse.Namespace, env: dict[str, dict[str, str]]
) -> list[str]:
    """The selected benchmarks both versions have; a test only one has is named, not compared."""
    selection = args.selection or ab.DEFAULT_SELECTION
    in_head = ab.collect(head, selection, args.passthrough, env["B"])
    in_base = ab.collect(base, selection, args.passthrough, env["A"])
    for node in sorted(set(in_head) ^ set(in_base)):
        print(f"not compared (only in {'B' if node in in_head else 'A'}): {node}")
    common = [node for node in in_head if node in set(in_base)]
    if not common:
        raise Unusable(f"-k {selection!r} selects no benchmark both versions have")
    return common


def cache_folder(args: argparse.Namespace, repo: Path) -> Path:
    """Engines, references and worktrees shared by both versions (--cache, else the repository's .cache)."""
    return (args.cache or repo / ".cache").resolve()


def run(args: argparse.Namespace) -> int:
    if args.merge:
        return merge(args)
    check_gate_arguments(args)
    shard = ab.parse_shard(args.shard) if args.shard else None
    settings = Settings.load(args.thresholds)
    shared = environment(args.env, "--env")
    env = {
        "A": {**shared, **environment(args.base_env, "--base-env")},
        "B": {**shared, **environment(args.head_env, "--head-env")},
    }
    folders = [checkouts.suite_folder(v) for v in (args.base, args.head)]
    if any(folders) and not all(folders):
        raise Unusable("--base and --head: give two commits, or two folders of the suite's sources")
    if all(folders):  # two folders of the suite's sources, no git needed
        base, head = (checkouts.Checkout(f, None, label) for f, label in zip(folders, "AB"))  # type: ignore[arg-type]
        return gate_of(args, shard, settings, env, base, head, repo=Path.cwd())
    repo = checkouts.repository(Path.cwd())
    base_sha = checkouts.commit(repo, args.base, "--base") if args.base else checkouts.main_branch_base(repo)
    if args.head is None:
        head_sha = None
    else:
        head_sha = checkouts.commit(repo, args.head, "--head")
        changed = checkouts.uncommitted_changes(repo)
        if head_sha == checkouts.git(repo, "rev-parse", "HEAD") and changed:
            raise Unusable(
                f"--head {args.head}: the working tree has uncommitted changes that {args.head} lacks "
                f"({', '.join(changed[:3])}); commit them, or leave --head out to measure the working tree"
            )
    with checkouts.worktrees(repo, cache_folder(args, repo) / "ab-worktrees") as trees:
        base = trees.checkout(base_sha, "A")
        head = trees.checkout(head_sha, "B") if head_sha else checkouts.Checkout(repo, None, "B")
        return gate_of(args, shard, settings, env, base, head, repo)


def gate_of(
    args: argparse.Namespace,
    shard: tuple[int, int] | None,
    settings: Settings,
    env: dict[str, dict[str, str]],
    base: checkouts.Checkout,
    head: checkouts.Checkout,
    repo: Path,
) -> int:
    """Select, measure, decide and write: the gate between two checkouts."""
    try:
        selected = select_tests(base, head, args, env)
        tests = selected[shard[0] - 1 :: shard[1]] if shard else selected
        if not tests:
            raise Unusable(f"--shard {args.shard}: this shard holds no test (fewer tests than shards)")
        gate = ab.Gate(base, head, plan_for(args, repo, tests, env, args.out), selected=tuple(selected))
        print(
            f"A: {base.describe()}\nB: {head.describe()}\n{len(tests)} test(s), up to {args.max_pairs} pairs, "
            f"budget {args.budget:g} min"
        )
        ab.run_gate(gate, settings)
    except Unusable as exc:
        ab.write_refusal(args.out, shard, str(exc))
        raise
    written = ab.write_outputs(gate, shard)
    print(
        f"\n{ab.format_rows(gate.rows)}\n\n{ab.verdict_line(gate.rows)}\n({gate.stopped_by}; wrote "
        + ", ".join(str(p) for p in written)
        + ")"
    )
    return ab.exit_status(gate.rows)


def merge(args: argparse.Namespace) -> int:
    records, rows = ab.merge(args.merge)
    with writing("--out", args.out):
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "ab.md").write_text(
            f"## A/B of {len(records)} shards\n\n{ab.format_rows(rows, markdown=True)}\n\n{ab.verdict_line(rows)}\n"
        )
    print(f"{len(records)} shard(s), {len(rows)} metric(s)\n\n{ab.format_rows(rows)}\n\n{ab.verdict_line(rows)}")
    return ab.exit_status(rows)
