"""Fail the run when a test got slower than in a saved baseline (``--regression-baseline``).

The same decision as ``trtbench compare`` (per test and metric: threshold and Mann-Whitney
test on the per-round samples); a test whose change the samples cannot confirm yet is
measured again, up to ``max_rounds_factor`` x ``--rounds`` in all, and the check fails if
it is still unclear. The added rounds are kept in the saved run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.session import BenchSession, machine_details
from trtbench.compare import compare, describe, format_table, regressions, unclear
from trtbench.runs import SavedRun, TestRecord, history, saved_runs
from trtbench.settings import Refused, Settings


def _this_run(session: BenchSession) -> SavedRun:
    machine = machine_details(session.options.model, session.weights_identity())
    return SavedRun(
        Path("this run"),
        machine,
        {},
        "",
        {name: TestRecord.from_info(name, info) for name, info in session.results.items()},
    )


def test_no_regression(bench_session):  # type: ignore[no-untyped-def]
    options = bench_session.options
    if options.regression_baseline is None:
        pytest.skip("regression check skipped: no --regression-baseline given")
    if not bench_session.results:
        pytest.fail(
            "--regression-baseline: no benchmark was timed in this run (all skipped, deselected or "
            "--benchmark-disable): nothing to compare",
            pytrace=False,
        )
    try:
        settings = Settings.load()
        new = _this_run(bench_session)
        folder = bench_session.storage()  # this GPU's and TensorRT version's folder
        earlier, left_out = history(new, saved_runs(folder) if folder.is_dir() else [])
        if options.regression_baseline == "latest":
            if not earlier:
                print(
                    f"no saved run of {options.model} on this GPU in {folder}: nothing to compare, passing "
                    "(a first run; save it with --benchmark-autosave to make the baseline)"
                )
                return
            old = earlier[-1]
        else:
            old = bench_session.checked.baseline  # loaded and checked at start
        deselected = [name for name in old.tests if name not in bench_session.selected]
        rows = compare(old, new, settings, earlier, deselected)
        cap = settings.max_rounds_factor * options.rounds
        for name in sorted({r.name for r in unclear(rows)}):
            samples = bench_session.results[name]["samples"]
            while name in {r.name for r in unclear(rows)} and len(samples["wall"]) < cap:
                more = bench_session.remeasure[name](min(options.rounds, cap - len(samples["wall"])))
                for metric, values in more.items():
                    samples[metric].extend(values)  # kept in the saved run
                rows = compare(old, _this_run(bench_session), settings, earlier, deselected)
    except Refused as exc:
        pytest.fail(f"--regression-baseline {options.regression_baseline}: {exc}", pytrace=False)
    print(f"baseline: {old.path}\nhistory for thresholds: {len(earlier)} run(s) in {folder}")
    for line in left_out:
        print(line)
    print(format_table(rows))
    if deselected:
        print(f"not compared (deselected in this run): {len(deselected)} test(s)")
    bad, undecided = regressions(rows), unclear(rows)
    assert not bad, "regressed: " + "; ".join(describe(r) for r in bad)
    assert not undecided, (
        f"can't tell after up to {cap} rounds (CI fails on this; rerun with more --rounds): "
        + "; ".join(describe(r) for r in undecided)
    )
