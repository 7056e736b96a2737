"""One benchmark per approach and backend: the real pipeline, every batch of every round
checked against ONNX Runtime, figures in ``extra_info``.

Test ids are stable (``test_approach[torch-overlap]``, ``[torch-cuda_graph-b1]``): saved
runs are compared by them.
"""

from __future__ import annotations

import pytest

from fixtures.bench import run_benchmark
from trtbench.gpu.approaches import approach_class
from trtbench.gpu.backends.base import UnsupportedApproach
from trtbench.engines import multi_profile_batches

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
    ("multi_context", "multi_context", {}),
    ("multi_profile-two_profiles", "multi_profile", {"variant": "two_profiles"}),
    ("multi_profile-one_profile", "multi_profile", {"variant": "one_profile"}),
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        from fixtures.options import OPTIONS_KEY

        backends = metafunc.config.stash[OPTIONS_KEY].backends
        metafunc.parametrize("backend", backends, ids=list(backends))


@pytest.mark.gpu
@pytest.mark.parametrize("case,approach,kwargs", CASES, ids=[c[0] for c in CASES])
def test_approach(case, approach, kwargs, backend, options, engines, make_workload, benchmark, request):  # type: ignore[no-untyped-def]
    cls = approach_class(approach)
    sizes = None
    if approach == "multi_profile":
        if backend != "tensorrt":
            pytest.skip(f"{backend} has no optimization profiles: multi_profile is TensorRT only")
        small, large = multi_profile_batches(options.batch_size)  # range checked at collection
        sizes = [small if i % 2 == 0 else large for i in range(options.batches)]
    kind = "fp16" if kwargs.get("variant") == "one_profile" else cls.engine_kind
    try:
        engine = engines(backend, kind)
    except UnsupportedApproach as exc:
        pytest.skip(str(exc))
    workload = make_workload(cls.host_memory, batch=kwargs.get("batch"), sizes=sizes)
    extra = {k: v for k, v in kwargs.items() if k != "batch"}
    if approach == "multi_context":
        extra["contexts"] = options.contexts
    benchmark.group = f"{backend} batch {workload.max_batch}"
    with cls.open(engine, workload, **extra) as pipeline:
        info = run_benchmark(benchmark, pipeline, options, case, backend, request.config)
    if approach == "cuda_graph" and backend == "torch":
        # the point of the approach: it must really replay graphs, not fall back silently
        assert info["graph_fallback_reason"] is None, info["graph_fallback_reason"]
        assert info["enqueue_launches"] == 0 and info["graph_launches"] > 0, info
