"""One benchmark per approach and backend: the real pipeline, every batch of every round
checked against ONNX Runtime, figures in ``extra_info``; and, with ``--batch-sweep``,
the baseline and the best approach at each batch size.

Test ids are stable (``test_approach[torch-overlap]``, ``[torch-cuda_graph-b1]``,
``test_sweep[torch-uint8_input-b32]``): saved runs are compared by them.
"""

from __future__ import annotations

import pytest

from fixtures.bench import run_benchmark
from trtbench.engines import multi_profile_batches
from trtbench.gpu.approaches import approach_class
from trtbench.gpu.backends.base import UnsupportedApproach

# (test id, approach, keyword arguments of the case)
CASES = [
    ("baseline", "baseline", {}),
    ("reuse_buffers", "reuse_buffers", {}),
    ("pinned_memory", "pinned_memory", {}),
    ("fp16", "fp16", {}),
    ("overlap", "overlap", {}),
    ("async_postprocess", "async_postprocess", {}),
    ("async_postprocess-b1", "async_postprocess", {"batch": 1}),
    ("cuda_graph", "cuda_graph", {}),
    ("cuda_graph-b1", "cuda_graph", {"batch": 1}),
    ("gpu_postprocess", "gpu_postprocess", {}),
    ("uint8_input", "uint8_input", {}),
    ("multi_context", "multi_context", {}),
    ("multi_profile-two_profiles", "multi_profile", {"variant": "two_profiles"}),
    ("multi_profile-one_profile", "multi_profile", {"variant": "one_profile"}),
]
SWEEP_APPROACHES = ("baseline", "uint8_input")  # the tutorial's start and the best pipeline


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    from fixtures.options import OPTIONS_KEY

    options = metafunc.config.stash[OPTIONS_KEY]
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", options.backends, ids=list(options.backends))
    if "sweep_case" in metafunc.fixturenames:
        cases = [pytest.param((a, b), id=f"{a}-b{b}") for b in options.batch_sweep for a in SWEEP_APPROACHES]
        metafunc.parametrize("sweep_case", cases or [pytest.param(None, id="none", marks=pytest.mark.skip(
            reason="no --batch-sweep given"))])


def _engine(engines, backend, kind, batch=None):  # type: ignore[no-untyped-def]
    try:
        return engines(backend, kind, batch)  # TensorRT: an engine whose profile's opt is the measured batch
    except UnsupportedApproach as exc:
        pytest.skip(str(exc))


@pytest.mark.gpu
@pytest.mark.parametrize("case,approach,kwargs", CASES, ids=[c[0] for c in CASES])
def test_approach(case, approach, kwargs, backend, options, engines, make_workload, benchmark, request):  # type: ignore[no-untyped-def]
    cls = approach_class(approach)
    sizes = None
    if approach == "multi_profile":
        if backend != "tensorrt":
            pytest.skip(f"{backend} has no optimization profiles: multi_profile is TensorRT only")
        small, large = multi_profile_batches(options.batch_size)  # --batch-size 1 refused at collection
        sizes = [small if i % 2 == 0 else large for i in range(options.batches)]
    engine = _engine(engines, backend, "fp16" if kwargs.get("variant") == "one_profile" else cls.engine_kind,
                     kwargs.get("batch"))
    workload = make_workload(cls, batch=kwargs.get("batch"), sizes=sizes)
    extra = {k: v for k, v in kwargs.items() if k != "batch"}
    if approach == "multi_context":
        extra["contexts"] = options.contexts
    benchmark.group = f"{options.model} {backend} batch {workload.max_batch}"
    info = run_benchmark(benchmark, lambda: cls.open(engine, workload, **extra), options, case, backend, request.config)
    if cls.name in ("cuda_graph", "gpu_postprocess", "uint8_input"):
        # the point of the approach, on every backend: it must really replay graphs, not fall back silently
        assert info["graph_fallback_reason"] is None, info["graph_fallback_reason"]
        assert info["enqueue_launches"] == 0 and info["graph_launches"] > 0, info


@pytest.mark.gpu
def test_sweep(sweep_case, backend, options, engines, make_workload, benchmark, request):  # type: ignore[no-untyped-def]
    approach, batch = sweep_case
    cls = approach_class(approach)
    engine = _engine(engines, backend, cls.engine_kind, batch)
    workload = make_workload(cls, batch=batch)
    benchmark.group = f"{options.model} {backend} sweep"
    run_benchmark(benchmark, lambda: cls.open(engine, workload), options, approach, backend, request.config,
                  sweep=True)
