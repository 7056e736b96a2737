"""One benchmark per approach and backend: the real pipeline, every batch of every round
checked against ONNX Runtime, figures in ``extra_info``; and, with ``--batch-sweep``,
the baseline and the best approach at each batch size.

Test ids are stable (``test_approach[torch-overlap]``, ``[torch-cuda_graph-b1]``,
``test_sweep[torch-uint8_input-b32]``): saved runs are compared by them. The cases are
``trtbench.catalogue.CASES``; a case a backend cannot run is skipped with the reason.
"""

from __future__ import annotations

import pytest

from fixtures.bench import run_benchmark
from fixtures.session import session_of
from trtbench.catalogue import CASES, SWEEP_APPROACHES, approach


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    options = session_of(metafunc.config).options
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", options.backends, ids=list(options.backends))
    if "case" in metafunc.fixturenames:
        metafunc.parametrize("case", CASES, ids=[c.id for c in CASES])
    if "sweep_case" in metafunc.fixturenames:
        cases = [pytest.param((a, b), id=f"{a}-b{b}") for b in options.batch_sweep for a in SWEEP_APPROACHES]
        metafunc.parametrize(
            "sweep_case",
            cases or [pytest.param(None, id="none", marks=pytest.mark.skip(reason="no --batch-sweep given"))],
        )


@pytest.mark.gpu
def test_approach(case, backend, bench_session, engines, make_workload, benchmark):  # type: ignore[no-untyped-def]
    from trtbench.engines import multi_profile_batches
    from trtbench.gpu.approaches import approach_class

    options = bench_session.options
    spec = approach(case.approach)
    sizes = None
    if case.approach == "multi_profile":
        small, large = multi_profile_batches(options.batch_size)  # --batch-size 1 refused at collection
        sizes = [small if i % 2 == 0 else large for i in range(options.batches)]
    engine = engines(backend, case.kind, case.batch)  # TensorRT: an engine whose profile's opt is the measured batch
    workload = make_workload(spec, batch=case.batch, sizes=sizes)
    extra = {"variant": case.variant} if case.variant else {}
    if case.approach == "multi_context":
        extra["contexts"] = options.contexts
    cls = approach_class(case.approach)
    benchmark.group = f"{options.model} {backend} batch {workload.max_batch}"
    info = run_benchmark(benchmark, lambda: cls.open(engine, workload, **extra), bench_session, case.id, backend)
    if spec.replays_graphs:
        # the point of the approach, on every backend: it must really replay graphs, not fall back silently
        assert info["graph_fallback_reason"] is None, info["graph_fallback_reason"]
        assert info["enqueue_launches"] == 0 and info["graph_launches"] > 0, info


@pytest.mark.gpu
def test_sweep(sweep_case, backend, bench_session, engines, make_workload, benchmark):  # type: ignore[no-untyped-def]
    from trtbench.gpu.approaches import approach_class

    name, batch = sweep_case
    spec = approach(name)
    engine = engines(backend, spec.engine_kind, batch)
    workload = make_workload(spec, batch=batch)
    cls = approach_class(name)
    benchmark.group = f"{bench_session.options.model} {backend} sweep"
    run_benchmark(benchmark, lambda: cls.open(engine, workload), bench_session, name, backend, sweep=True)
