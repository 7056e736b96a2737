"""A/A calibration: run the same code several times, derive each test's thresholds from
how far the runs land apart, and check that none of them flags another.

    trtbench calibrate --runs 5 --out calibrated.toml -- --backend torch
    trtbench calibrate --from-runs RUN1.json ... RUN5.json --out calibrated.toml

Without --from-runs it runs `python -m pytest benchmarks --benchmark-autosave` (plus the
arguments after --) --runs times, each in its own process. It writes a TOML file of
[fixed.wall] and [fixed.compute] thresholds per test (noise_multiplier x the run-to-run
spread or cv_multiplier x the round-to-round noise, never below the floor; it needs
history_min_runs + 1 distinct runs of the same GPU, model and tests), usable as
`trtbench compare --thresholds calibrated.toml` (it holds every section of the settings it
was calibrated with, the A/B gate's too) or merged into regression.toml by hand. It then judges each run against
the others (leave-one-out): a correct calibration flags nothing; a false alarm is exit 1.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

from trtbench.catalogue import case_of
from trtbench.cli import EXIT_OK, EXIT_REGRESSION, writing
from trtbench.compare import check_comparable, compare, describe, regressions
from trtbench.runs import SavedRun, saved_runs
from trtbench.settings import DEFAULT_THRESHOLDS, GATED, Refused, Settings, history_threshold
from trtbench.stats import run_spread

ACCEPTS_PASSTHROUGH = True  # arguments after -- go to pytest


def run_suite(runs: int, pytest_args: list[str], storage: Path) -> list[Path]:
    """``runs`` runs of the suite, autosaved; the saved files they made."""
    made: list[Path] = []
    for k in range(runs):
        before = set(saved_runs(storage)) if storage.is_dir() else set()
        command = [sys.executable, "-m", "pytest", "benchmarks", "--benchmark-autosave", *pytest_args]
        print(f"calibration run {k + 1} of {runs}: {' '.join(command)}", flush=True)
        if subprocess.run(command).returncode != 0:
            raise Refused(f"calibration run {k + 1} failed: a calibration needs green runs of the same code")
        new = sorted(set(saved_runs(storage)) - before)
        if len(new) != 1:
            raise Refused(
                f"calibration run {k + 1} saved {len(new)} runs in {storage} (expected 1): "
                "pass the storage with --storage"
            )
        made += new
    return made


def thresholds(runs: list[SavedRun], settings: Settings) -> dict[str, dict[str, tuple[float, float, list[float]]]]:
    """metric -> test -> (threshold, spread, per-run medians), one test per case (the entry a
    threshold file holds): where backends share a case, the one with the larger threshold."""
    out: dict[str, dict[str, tuple[float, float, list[float]]]] = {}
    for metric in GATED:
        by_case: dict[str, tuple[str, tuple[float, float, list[float]]]] = {}
        for name in sorted(runs[0].tests):  # every run measured the same tests (checked)
            samples = [s for r in runs if (s := r.tests[name].gated(metric))]
            value = history_threshold(name, samples, metric, settings)
            case = case_of(name)
            if value is not None and (case not in by_case or value > by_case[case][1][0]):
                medians = [statistics.median(s) for s in samples]
                by_case[case] = (name, (value, run_spread(medians), medians))
        out[metric] = dict(sorted(by_case.values()))
    return out


def render_toml(
    table: dict[str, dict[str, tuple[float, float, list[float]]]], runs: list[SavedRun], settings: Settings
) -> str:
    """A whole settings file: the decision, floors and fallbacks it was calibrated with, and
    the derived thresholds as its ``[fixed.*]`` tables (each with the spread it came from)."""
    lines = [
        f"# A/A calibration over {len(runs)} runs of the same code on {runs[0].machine.get('gpu_name')} "
        f"(TensorRT {runs[0].machine.get('tensorrt')}, model {runs[0].machine.get('model')}):",
        "# threshold = noise_multiplier x (max - min) / median of the per-run medians, or cv_multiplier x the",
        "# median robust per-round CV, whichever is larger, never below the floor.",
        "# Use with `trtbench compare --thresholds FILE`; its [fixed.*] tables can be merged into regression.toml.",
        "",
        "[decision]",
        f"alpha = {settings.alpha!r}",
        f"noise_multiplier = {settings.noise_multiplier!r}",
        f"cv_multiplier = {settings.cv_multiplier!r}",
        f"history_min_runs = {settings.history_min_runs}",
        f"history_window = {settings.history_window}",
        f"max_rounds_factor = {settings.max_rounds_factor}",
        "",
        "[floor]",
        *(f"{metric} = {value!r}" for metric, value in settings.floor.items()),
    ]
    for metric, fallback in settings.thresholds.items():
        lines += ["", f"[thresholds.{metric}]", *(f'"{key}" = {value!r}' for key, value in fallback.items())]
    lines += ["", "[ab]", f"alpha = {settings.ab_alpha!r}", f"ok_alpha = {settings.ab_ok_alpha!r}"]
    for metric, smallest in settings.ab.items():
        lines += ["", f"[ab.{metric}]", *(f'"{key}" = {value!r}' for key, value in smallest.items())]
    for metric, tests in table.items():
        lines += ["", f"[fixed.{metric}]"]
        derived = {case_of(name) for name in tests}
        lines += [
            f'"{key}" = {value!r}  # hand-set' for key, value in settings.fixed[metric].items() if key not in derived
        ]
        for name, (value, spread, medians) in tests.items():
            lines.append(
                f'"{case_of(name)}" = {value:.4f}  # spread {spread:.2%}; medians '
                + ", ".join(f"{v:.3f}" for v in medians)
                + " ms"
            )
    return "\n".join(lines) + "\n"


def leave_one_out(runs: list[SavedRun], settings: Settings) -> list[str]:
    """Each run against the others (thresholds from them, baseline the newest of them): the false alarms."""
    alarms = []
    for k, run in enumerate(runs):
        others = runs[:k] + runs[k + 1 :]
        rows = compare(others[-1], run, settings, others)
        alarms += [f"{run.path.name}: {describe(r)}" for r in regressions(rows)]
        print(
            f"A/A: {run.path.name} against the other {len(others)}: {len(rows)} decisions, "
            f"{len(regressions(rows))} flagged"
        )
    return alarms


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs",
        type=int,
        default=5,
        help="runs of the suite to make (default 5; at least history_min_runs + 1, so that each run "
        "left out still has a history)",
    )
    parser.add_argument(
        "--from-runs",
        nargs="+",
        type=Path,
        default=None,
        metavar="JSON",
        help="calibrate from these saved runs instead of running the suite",
    )
    parser.add_argument(
        "--storage",
        type=Path,
        default=None,
        help="where the runs are saved (default: .benchmarks, searched recursively)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("calibrated.toml"), help="TOML to write (default calibrated.toml)"
    )
    parser.add_argument(
        "--thresholds", type=Path, default=DEFAULT_THRESHOLDS, help="settings (default regression.toml)"
    )


def run(args: argparse.Namespace) -> int:
    settings = Settings.load(args.thresholds)
    count = len(args.from_runs) if args.from_runs else args.runs
    needed = settings.history_min_runs + 1  # each run left out is judged on a history of the others
    if count < needed:
        given = f"--from-runs: {count} run(s) given" if args.from_runs else f"--runs {count}"
        raise Refused(f"{given}; a calibration needs at least {needed} runs")
    if args.from_runs and args.passthrough:
        raise Refused("arguments after -- go to the suite's runs; --from-runs makes none")
    paths = args.from_runs or run_suite(args.runs, args.passthrough, args.storage or Path(".benchmarks"))
    if len({Path(p).resolve() for p in paths}) < len(paths):
        raise Refused("--from-runs: a run is given twice; an A/A check needs distinct runs")
    runs = [SavedRun.load(p).measured() for p in paths]
    _refuse_copies(runs)
    for other in runs[1:]:  # before anything is written
        check_comparable(runs[0], other)
        if set(other.tests) != set(runs[0].tests):
            raise Refused(
                f"{other.path.name} and {runs[0].path.name} measured different tests; calibrate runs of "
                "the same command"
            )
    table = thresholds(runs, settings)
    with writing("--out", args.out):
        args.out.write_text(render_toml(table, runs, settings))
    for metric, tests in table.items():
        for name, (value, spread, _) in tests.items():
            print(f"{name} {metric}: spread {spread:.2%} -> threshold {value:.2%}")
    print(f"wrote {args.out}")
    alarms = leave_one_out(runs, settings)
    if alarms:
        print(f"{len(alarms)} false alarm(s) between runs of the same code: " + "; ".join(alarms))
        return EXIT_REGRESSION
    print("no false alarm between runs of the same code")
    return EXIT_OK


def _refuse_copies(runs: list[SavedRun]) -> None:
    """Copies of one run under other names are no A/A set: their spread would be 0."""
    seen: dict[tuple[tuple[str, tuple[float, ...]], ...], str] = {}
    for run in runs:
        key = tuple(sorted((name, test.samples.get("wall", ())) for name, test in run.tests.items()))
        if key in seen:
            raise Refused(
                f"{run.path.name} holds the same samples as {seen[key]}: copies of one run are not "
                "separate runs of the same code"
            )
        seen[key] = run.path.name
