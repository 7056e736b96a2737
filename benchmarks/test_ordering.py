"""The ordering the techniques must keep, checked on this run's medians (runs last)."""

from __future__ import annotations

import pytest

from fixtures.bench import interleaved_ms_per_batch
from trtbench.ordering import check_ordering, confirm_chain_failures, failures


def test_ordering(request, bench_session):  # type: ignore[no-untyped-def]
    config = request.config
    options = bench_session.options
    if config.getoption("benchmark_disable", False) or config.getoption("benchmark_skip", False):
        pytest.skip("ordering check skipped: benchmarks are disabled in this run")
    if not bench_session.figures:
        pytest.skip("ordering check skipped: no approach benchmark ran in this run")
    verdicts = check_ordering(bench_session.figures, options.batch_size, options.ordering_tolerance)

    def measure(backend: str, before: str, after: str) -> tuple[float, float]:
        a, b = interleaved_ms_per_batch(
            request.getfixturevalue("engines"),
            request.getfixturevalue("make_workload"),
            backend,
            (before, after),
            options.rounds,
            options.warmup_rounds,
        )
        return a, b

    verdicts = confirm_chain_failures(verdicts, measure, options.ordering_tolerance)
    for v in verdicts:
        print(f"[{v.backend}] {'PASS' if v.ok else 'FAIL' if v.ok is False else 'n/a '} {v.rule}: {v.message}")
    evaluated = [v for v in verdicts if v.ok is not None]
    if not evaluated:
        pytest.skip("ordering check skipped: no rule had both of its figures in this run")
    failed = failures(verdicts)
    assert not failed, "ordering violated:\n" + "\n".join(f"[{v.backend}] {v.rule}: {v.message}" for v in failed)
