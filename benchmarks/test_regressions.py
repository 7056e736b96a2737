"""Fail the run when a test got slower than in a saved baseline (``--regression-baseline``).

The same decision as ``python -m trtbench.compare`` (per test and metric: threshold and
Mann-Whitney test on the per-round samples); a test whose change the samples cannot
confirm yet is measured again, up to ``max_rounds_factor`` x ``--rounds`` in all, and the
check fails if it is still unclear. The added rounds are kept in the saved run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.bench import REMEASURE_KEY, RESULTS_KEY, SELECTED_KEY, machine_details
from fixtures.options import Options
from trtbench.compare import (LOADED, Refused, Run, Settings, MeasuredTest, compare, describe, format_table,
                              load_history, regressions, same_identity, saved_runs, unclear)
from trtbench.model import weights_identity


def _storage(config: pytest.Config) -> Path:
    return Path(str(config.getoption("benchmark_storage")).removeprefix("file://"))


def _this_run(results: dict, options: Options) -> Run:  # type: ignore[type-arg]
    return Run(Path("this run"), machine_details(options.model, weights_identity(options.weights)),
               {name: MeasuredTest(info["batch_size"], {m: info["samples"][m] for m in LOADED if m in info["samples"]})
                for name, info in results.items()})


def test_no_regression(request, options):  # type: ignore[no-untyped-def]
    config = request.config
    if options.regression_baseline is None:
        pytest.skip("regression check skipped: no --regression-baseline given")
    results = config.stash[RESULTS_KEY]
    if not results:
        pytest.fail("--regression-baseline: no benchmark was timed in this session (all skipped, deselected or "
                    "--benchmark-disable): nothing to compare", pytrace=False)
    new = _this_run(results, options)
    history = [r for r in load_history(saved_runs(_storage(config))) if same_identity(r, new)]
    if options.regression_baseline == "latest":
        if not history:
            print(f"no saved run of {options.model} on this GPU in {_storage(config)}: nothing to compare, passing "
                  "(a first run; save it with --benchmark-autosave to make the baseline)")
            return
        old = history[-1]
    else:
        old = Run.load(Path(options.regression_baseline))  # checked readable at start
    deselected = [name for name in old.tests if name not in config.stash[SELECTED_KEY]]
    settings = Settings.load()
    try:
        rows = compare(old, new, settings, history, deselected)
        cap = settings.max_rounds_factor * options.rounds
        for name in sorted({r.name for r in unclear(rows)}):
            samples = results[name]["samples"]
            while name in {r.name for r in unclear(rows)} and len(samples["wall"]) < cap:
                more = config.stash[REMEASURE_KEY][name](min(options.rounds, cap - len(samples["wall"])))
                for metric, values in more.items():
                    samples[metric].extend(values)  # kept in the saved run
                rows = compare(old, _this_run(results, options), settings, history, deselected)
    except Refused as exc:
        pytest.fail(f"--regression-baseline {options.regression_baseline}: {exc}", pytrace=False)
    print(f"baseline: {old.path}\n" + format_table(rows))
    if deselected:
        print(f"not compared (deselected in this session): {len(deselected)} test(s)")
    bad, undecided = regressions(rows), unclear(rows)
    assert not bad, "regressed: " + "; ".join(describe(r) for r in bad)
    assert not undecided, (f"can't tell after up to {cap} rounds (CI fails on this; rerun with more --rounds): "
                           + "; ".join(describe(r) for r in undecided))
