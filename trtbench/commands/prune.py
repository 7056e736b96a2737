"""Keep the newest saved runs of each folder of a storage, remove the rest.

    trtbench prune .benchmarks --keep 30

The rule: per folder (one GPU, TensorRT version and machine), the --keep runs with the
highest numbers (pytest-benchmark's NNNN_ prefix) stay. It prints what it removed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from trtbench.cli import EXIT_OK, Unusable
from trtbench.runs import prune, saved_runs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("storage", type=Path, help="a folder of saved runs (searched recursively)")
    parser.add_argument("--keep", type=int, required=True, help="runs to keep per folder (at least 1)")


def run(args: argparse.Namespace) -> int:
    if not args.storage.is_dir():
        raise Unusable(f"{args.storage}: not a folder")
    removed = prune(args.storage, args.keep)
    for path in removed:
        print(f"pruned {path}")
    kept: dict[Path, int] = {}
    for path in saved_runs(args.storage):
        kept[path.parent] = kept.get(path.parent, 0) + 1
    for folder, count in sorted(kept.items()):
        print(f"{folder}: {count} run(s) kept")
    return EXIT_OK
