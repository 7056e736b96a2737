"""The ordering the techniques must keep, checked on this session's medians (runs last)."""

from __future__ import annotations

import pytest

from fixtures.bench import FIGURES_KEY, interleaved_ms_per_batch
from trtbench.ordering import check_ordering, confirm_chain_failures, failures


def test_ordering(request, options):  # type: ignore[no-untyped-def]
    config = request.config
    if config.getoption("benchmark_disable", False) or config.getoption("benchmark_skip", False):
        pytest.skip("ordering check skipped: benchmarks are disabled in this run")
    figures = config.stash[FIGURES_KEY]
    if not figures:
        pytest.skip("ordering check skipped: no approach benchmark ran in this session")
    verdicts = check_ordering(figures, options.batch_size, options.ordering_tolerance)

    def measure(backend: str, before: str, after: str) -> tuple[float, float]:
        a, b = interleaved_ms_per_batch(request.getfixturevalue("engines"), request.getfixturevalue("make_workload"),
                                        backend, (before, after), options.rounds, options.warmup_rounds)
        return a, b

    verdicts = confirm_chain_failures(verdicts, measure, options.ordering_tolerance)
    for v in verdicts:
        print(f"[{v.backend}] {'PASS' if v.ok else 'FAIL' if v.ok is False else 'n/a '} {v.rule}: {v.message}")
    evaluated = [v for v in verdicts if v.ok is not None]
    if not evaluated:
        pytest.skip("ordering check skipped: no rule had both of its figures in this session")
    failed = failures(verdicts)
    assert not failed, "ordering violated:\n" + "\n".join(f"[{v.backend}] {v.rule}: {v.message}" for v in failed)
