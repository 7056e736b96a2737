"""Turn a saved run into report.md and its pictures.

    trtbench report RUN.json --out report/

report.png: time per batch per approach with its floor and the speedup over baseline;
timeline-<backend>.png: one round per approach on one time scale; sweep.png (with
--batch-sweep): images per second against p99 latency. A run that does not load, or
measured nothing, is refused (exit 2) before anything is written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from trtbench.cli import EXIT_OK, Unusable, writing
from trtbench.report import write_report
from trtbench.runs import SavedRun


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, help="a saved run (pytest-benchmark JSON of this suite)")
    parser.add_argument("--out", type=Path, default=Path("report"), help="output folder (default ./report)")


def run(args: argparse.Namespace) -> int:
    saved = SavedRun.load(args.run).measured()
    if args.out.exists() and not args.out.is_dir():
        raise Unusable(f"--out {args.out}: not a folder")
    with writing("--out", args.out):
        written = write_report(saved, args.out)
    print("wrote " + ", ".join(str(p) for p in written))
    return EXIT_OK
