"""Fail the run when an approach got slower than in a saved baseline (``--regression-baseline``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.bench import RESULTS_KEY, machine_details
from trtbench.compare import Refused, Run, compare, format_table, load_thresholds, newest_two, regressions


def _storage(config: pytest.Config) -> Path:
    return Path(str(config.getoption("benchmark_storage")).removeprefix("file://"))


def test_no_regression(request):  # type: ignore[no-untyped-def]
    config = request.config
    baseline = config.getoption("--regression-baseline")
    if baseline is None:
        pytest.skip("regression check skipped: no --regression-baseline given")
    results = config.stash[RESULTS_KEY]
    if not results:
        pytest.skip("regression check skipped: no approach benchmark was timed in this session")
    path = newest_two(_storage(config))[1] if baseline == "latest" else Path(baseline)
    if path is None or not path.exists():
        print(f"no baseline run ({baseline}): nothing to compare, passing; save this run to make one")
        return
    current = Run(Path("this run"), machine_details(),
                  {name: info["ms_per_batch"] for name, info in results.items()},
                  {name: info["batch_size"] for name, info in results.items()})
    try:
        rows = compare(Run.load(path), current, load_thresholds())
    except Refused as exc:
        pytest.fail(str(exc))
    print(f"baseline: {path}\n" + format_table(rows))
    bad = regressions(rows)
    assert not bad, "regressed: " + "; ".join(
        f"{r.name} {r.old_ms:.3f} -> {r.new_ms:.3f} ms per batch ({r.change:+.1%}, threshold {r.threshold:.0%})"
        for r in bad)
