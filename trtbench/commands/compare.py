"""Compare saved runs per test and metric; exit 1 on a regression.

    trtbench compare OLD.json NEW.json
    trtbench compare NEW.json                 # against the newest older run of its folder
    trtbench compare --storage .benchmarks    # the newest run there against the one before it

Per test, wall time and GPU compute per batch are decided on their per-round samples: a
change past the test's threshold that a Mann-Whitney test confirms. Thresholds come from
--thresholds (regression.toml), derived from the history: the other saved runs of the
same GPU, TensorRT version, model and weights in NEW's folder (that folder only: it holds
one machine's runs), which are named.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from trtbench import compare
from trtbench.cli import EXIT_OK, EXIT_REGRESSION
from trtbench.runs import DEFAULT_STORAGE, SavedRun, history, saved_runs
from trtbench.settings import DEFAULT_THRESHOLDS, Refused, Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "runs", nargs="*", type=Path, help="OLD.json NEW.json, or NEW.json (default: the newest run in --storage)"
    )
    parser.add_argument(
        "--storage",
        type=Path,
        default=None,
        help="saved runs folder, searched recursively for the newest run (default .benchmarks)",
    )
    parser.add_argument(
        "--thresholds",
        type=Path,
        default=DEFAULT_THRESHOLDS,
        help="a whole settings file like regression.toml (default: regression.toml); what it leaves out "
        "takes the built-in defaults",
    )
    parser.add_argument(
        "--allow-missing",
        action="append",
        default=[],
        metavar="PATTERN",
        help="a test name, or an fnmatch pattern, the new run may lack: deselected on purpose",
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown (a job summary)")


def run(args: argparse.Namespace) -> int:
    if len(args.runs) > 2:
        raise Refused(f"give at most two runs (OLD.json NEW.json), got {len(args.runs)}")
    missing = [str(p) for p in args.runs if not p.exists()]  # a folder is refused by the reader
    if missing:
        raise Refused(f"no such file: {', '.join(missing)}")
    if args.storage is not None and args.runs:
        raise Refused(
            "--storage picks the newest run when no run is given; with runs given, the history is NEW's "
            "folder: give one or the other"
        )
    if args.storage is not None and not args.storage.is_dir():
        raise Refused(f"--storage {args.storage}: not a folder")
    settings = Settings.load(args.thresholds)
    if args.runs:
        new_path = args.runs[-1]
    else:
        storage = args.storage or DEFAULT_STORAGE
        found = saved_runs(storage) if storage.is_dir() else []
        if not found:
            raise Refused(f"no saved run (NNNN_*.json) found in {storage}")
        new_path = found[-1]
    new = SavedRun.load(new_path).measured()
    folder = saved_runs(new.path.parent, recursive=False)  # one machine's runs, oldest first
    here = [p.resolve() for p in folder]
    before = folder[: here.index(new.path.resolve())] if new.path.resolve() in here else folder
    earlier, left_out = history(new, before)
    if len(args.runs) == 2:
        old = SavedRun.load(args.runs[0])
    elif earlier:
        old = earlier[-1]
    elif left_out:
        raise Refused(
            f"no baseline for {new.path}: the {len(left_out)} earlier run(s) in {new.path.parent} cannot be used ("
            + "; ".join(line.removeprefix("left out: ") for line in left_out)
            + ")"
        )
    else:
        print(
            f"no baseline to compare {new.path} with in {new.path.parent}: first run, passing (it becomes the baseline)"
        )
        return EXIT_OK
    rows = compare.compare(old, new, settings, earlier, args.allow_missing)
    print(f"old: {old.path}\nnew: {new.path}")
    used = [r.path.name.split("_")[0] for r in compare.threshold_history(new, earlier, settings)]
    print(
        f"history for thresholds: {len(used)} run(s) of the same GPU, TensorRT, model and weights"
        + (f" in {new.path.parent}: {', '.join(used)}" if used else "")
    )
    for line in left_out:
        print(line)
    print()
    print(compare.format_table(rows, args.markdown))
    status = compare.exit_status(rows)
    bad = compare.regressions(rows) if status == EXIT_REGRESSION else compare.unclear(rows)
    if status == EXIT_OK:
        print("\nno regression")
    else:
        what = "regression(s)" if status == EXIT_REGRESSION else "can't tell: rerun with more --rounds"
        print(f"\n{len(bad)} {what}: " + "; ".join(compare.describe(r) for r in bad))
    return status
