"""Device memory stays flat when pipelines are opened, run and closed again and again
(torch backend; the GPU's own figure, cudaMemGetInfo, after each close)."""

from __future__ import annotations

import pytest

from trtbench import catalogue

OPENS = 100
WARM = 5  # the first opens fill caches (cuDNN workspaces, CUDA graph pools)
FLAT_MB = 256


def used_mb() -> float:
    from trtbench.gpu.cuda import cuda_call, cudart

    free, total = cuda_call("cudaMemGetInfo", cudart.cudaMemGetInfo())
    return (total - free) / 2**20


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("approach", [a.name for a in catalogue.APPROACHES if not a.unsupported("torch")])
def test_memory_is_flat_over_repeated_opens(approach, engines, make_workload, options):
    from trtbench.gpu.approaches import approach_class

    cls = approach_class(approach)
    declared = catalogue.approach(approach)
    engine = engines("torch", declared.engine_kind)
    workload = make_workload(declared)
    after_close = []
    for _ in range(OPENS):
        with cls.open(engine, workload) as pipeline:
            pipeline.prepare_round()
            pipeline.run_round()
            assert pipeline.check_round().passed
        after_close.append(used_mb())
    growth = max(after_close[WARM:]) - max(after_close[:WARM])
    print(
        f"memory {approach}: after {WARM} opens {max(after_close[:WARM]):.0f} MB, max over {OPENS} opens "
        f"{max(after_close):.0f} MB, growth {growth:+.0f} MB"
    )
    assert growth <= FLAT_MB, f"{approach}: device memory grew by {growth:.0f} MB over {OPENS} opens"
