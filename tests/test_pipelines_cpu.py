"""Every approach's pipeline, run on the CPU through the CUDA test double (tests/fake_cuda.py)
with ONNX Runtime as the engine: outputs checked against the reference each round, the
recorded figures and timeline, CUDA graphs, fallbacks, and the release of every handle."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import reference_data
from tests.fake_cuda import CpuEngine
from trtbench import catalogue as cat
from trtbench import graphs as gr
from trtbench.catalogue import NAMES, approach
from trtbench.gpu import cuda
from trtbench.gpu.approaches import approach_class
from trtbench.gpu.pipeline import BoundContext, Workload

BATCH, BATCHES = 4, 3
CPU_APPROACHES = [n for n in NAMES if n != "multi_profile"]  # profiles: see tests/test_tensorrt_double.py


@pytest.fixture(scope="module")
def graphs(spec, net, tmp_path_factory):
    folder = tmp_path_factory.mktemp("graphs")
    return {v: gr.export_onnx(net, spec, folder / f"{v}.onnx", v) for v in cat.GRAPH_VARIANTS}


@pytest.fixture(scope="module")
def data(graphs):
    return reference_data(graphs, BATCH, BATCHES)


def engine_for(runtime, graphs, spec, cls, sabotage=None):
    precision, variant = cat.ENGINE_KINDS[approach(cls.name).engine_kind]
    return CpuEngine(runtime, graphs[variant], precision, variant, cat.graph_io(spec, variant), sabotage)


def workload(data, cls, batch=None):
    declared = approach(cls.name)
    inputs, refs = data[declared.graph_variant]
    b = batch or BATCH
    return Workload([x[:b] for x in inputs], [{k: v[:b] for k, v in r.items()} for r in refs], declared.host_memory)


def run_rounds(pipeline, rounds=3):
    results = []
    for _ in range(rounds):
        pipeline.prepare_round()
        pipeline.run_round()
        results.append(pipeline.check_round())
    pipeline.finish()
    return results


@pytest.mark.parametrize("name", CPU_APPROACHES)
def test_every_approach_is_correct_every_round_and_releases_everything(name, runtime, graphs, spec, data):
    cls = approach_class(name)
    engine = engine_for(runtime, graphs, spec, cls)
    with cls.open(engine, workload(data, cls)) as pipeline:
        results = run_rounds(pipeline)
        metrics = pipeline.extra_metrics()
        samples = pipeline.events.round_samples()
        timeline = pipeline.events.timeline
    assert all(r.passed for r in results), [r.describe() for r in results]
    assert results[-1].rel_l2 < 1e-5  # the same graph as the reference, on the same CPU
    # every handle released: streams, events, buffers, graphs, contexts
    assert runtime.live() == {"memory": 0, "streams": 0, "events": 0, "graphs": 0, "graph_execs": 0}
    assert engine.closed_contexts == engine.contexts_made >= 1 and engine.cached_memory_releases >= 1
    # figures of every round and every batch
    assert set(samples) == {"upload", "compute", "download", "gpu_latency", "enqueue", "gpu_busy"}
    if name != "multi_context":  # one stream of compute: the GPU's busy time is the sum of the spans
        assert samples["gpu_busy"] == pytest.approx(samples["compute"])
    assert all(len(v) == 3 and np.isfinite(v).all() for v in samples.values())
    spans = {(s["batch"], s["span"]) for s in timeline["gpu"]}
    assert spans == {(i, s) for i in range(BATCHES) for s in ("upload", "compute", "download")}
    assert {s["span"] for s in timeline["host"]} == {"enqueue", "postprocess"}
    if name in ("cuda_graph", "gpu_postprocess", "uint8_input"):
        assert metrics["graph_fallback_reason"] is None and metrics["enqueue_launches"] == 0
        assert metrics["graph_launches"] == 3 * BATCHES and metrics["graph_captures"] == 2


def test_the_worker_thread_post_processes_and_the_timeline_says_so(runtime, graphs, spec, data):
    cls = approach_class("async_postprocess")
    with cls.open(engine_for(runtime, graphs, spec, cls), workload(data, cls)) as pipeline:
        run_rounds(pipeline, 1)
        threads = {s["thread"] for s in pipeline.events.timeline["host"] if s["span"] == "postprocess"}
    assert threads == {"trtbench-async_postprocess-postprocess"}


def test_batch_one_and_several_contexts(runtime, graphs, spec, data):
    cls = approach_class("multi_context")
    with cls.open(engine_for(runtime, graphs, spec, cls), workload(data, cls), contexts=3) as pipeline:
        assert all(r.passed for r in run_rounds(pipeline, 2))
        streams = {s["stream"] for s in pipeline.events.timeline["gpu"]}
    assert streams == {f"ctx{k} {kind}" for k in range(3) for kind in ("copy", "compute")}
    cls = approach_class("cuda_graph")
    with cls.open(engine_for(runtime, graphs, spec, cls), workload(data, cls, batch=1)) as pipeline:
        assert all(r.passed for r in run_rounds(pipeline, 2))


@pytest.mark.parametrize(
    "bug,expect",
    [
        ("previous_batch", "top-1 agreement"),
        ("swap_two_images", "relative L2"),
        ("unwritten_top5", "top-1 agreement"),
    ],
)
def test_planted_engine_bugs_fail_the_check(bug, expect, runtime, graphs, spec, data):
    """The checks' power through a whole pipeline: wrong batch, swapped images, a missing output."""
    previous: list[dict] = []

    def sabotage(results):
        if bug == "previous_batch":
            current = {k: v.copy() for k, v in results.items()}
            if previous:
                results.update(previous[-1])
            previous.append(current)
        elif bug == "swap_two_images":
            for value in results.values():
                value[[0, 1]] = value[[1, 0]]
        else:
            results["top5_class"][:] = -1

    cls = approach_class("gpu_postprocess")
    with cls.open(engine_for(runtime, graphs, spec, cls, sabotage), workload(data, cls)) as pipeline:
        result = run_rounds(pipeline, 2)[-1]
    assert not result.passed and any(f.startswith(expect) for f in result.failures()), result.describe()


def test_a_graph_replaced_when_the_batch_size_changes_is_released_at_once(runtime, graphs, spec, data):
    """Batch sizes 4, 4, 2 through two slots: slot 0 alternates 4 and 2, so its graph is
    re-captured twice a round; the old graph is closed and let go then, not kept until the
    pipeline closes."""
    cls = approach_class("cuda_graph")
    inputs, refs = data[approach(cls.name).graph_variant]
    sizes = [BATCH, BATCH, 2]
    mixed = Workload(
        [x[:b] for x, b in zip(inputs, sizes)],
        [{k: v[:b] for k, v in r.items()} for r, b in zip(refs, sizes)],
        approach(cls.name).host_memory,
    )
    with cls.open(engine_for(runtime, graphs, spec, cls), mixed) as pipeline:
        held, captures = [], []
        for _ in range(3):
            assert all(r.passed for r in run_rounds(pipeline, 1))
            held.append((len(pipeline._owned), runtime.live()["graphs"], runtime.live()["graph_execs"]))
            captures.append(pipeline.extra_metrics()["graph_captures"])
    assert captures[1] - captures[0] == captures[2] - captures[1] == 2  # re-captured in every round
    assert held[0] == held[1] == held[2] and held[0][1] <= 2  # at most one graph per slot alive
    assert runtime.live()["graphs"] == 0


def test_a_refused_capture_falls_back_to_enqueues_and_leaks_nothing(runtime, graphs, spec, data, monkeypatch):
    from tests.fake_cuda import CpuContext

    def refuse(self, stream):
        from trtbench.gpu.cuda import capture_graph

        def enqueue_then_launch_a_graph():  # what a backend must not do inside a capture
            self.enqueue(stream)
            cuda.cuda_call("cudaGraphLaunch", runtime.cudaGraphLaunch(next(iter(runtime.execs), 0), stream.handle))

        return capture_graph(stream, enqueue_then_launch_a_graph)

    monkeypatch.setattr(CpuContext, "capture_graph", refuse)
    cls = approach_class("cuda_graph")
    with cls.open(engine_for(runtime, graphs, spec, cls), workload(data, cls)) as pipeline:
        assert all(r.passed for r in run_rounds(pipeline, 2))
        metrics = pipeline.extra_metrics()
    assert "cudaGraphLaunch" in metrics["graph_fallback_reason"] and metrics["graph_launches"] == 0
    assert metrics["enqueue_launches"] == 2 * BATCHES
    assert runtime.last_error == runtime.cudaError_t.cudaSuccess  # the sticky error was cleared
    assert runtime.live()["graphs"] == 0


def test_opening_and_closing_many_times_holds_nothing(runtime, graphs, spec, data):
    cls = approach_class("uint8_input")
    engine = engine_for(runtime, graphs, spec, cls)
    for _ in range(5):
        with cls.open(engine, workload(data, cls)) as pipeline:
            run_rounds(pipeline, 1)
        assert runtime.live() == {"memory": 0, "streams": 0, "events": 0, "graphs": 0, "graph_execs": 0}


def test_a_pipeline_that_fails_while_being_built_releases_what_it_made(runtime, graphs, spec, data, monkeypatch):
    cls = approach_class("overlap")
    made = []
    original = cuda.Event.__init__

    def fail_on_the_fifth_event(self, *args, **kwargs):
        made.append(1)
        if len(made) == 5 + 6 * BATCHES + 1:  # the batch events, the origin, then the pipeline's own
            raise cuda.CudaError("cudaEventCreateWithFlags", runtime.cudaError_t.cudaErrorMemoryAllocation)
        original(self, *args, **kwargs)

    monkeypatch.setattr(cuda.Event, "__init__", fail_on_the_fifth_event)
    with pytest.raises(cuda.CudaError, match="cudaErrorMemoryAllocation"):
        cls.open(engine_for(runtime, graphs, spec, cls), workload(data, cls))
    assert runtime.live() == {"memory": 0, "streams": 0, "events": 0, "graphs": 0, "graph_execs": 0}


@pytest.mark.slow
@pytest.mark.parametrize("planted,fails", [("", False), ("fp16:wrong:1", True)])
def test_a_benchmark_whose_pipeline_answers_wrong_fails_its_correctness_check(tmp_path, planted, fails):
    """The whole benchmark (fixtures/bench.py) through the CPU doubles, with a wrong batch planted
    outside the product code (tests/plant.py): the benchmark fails naming ONNX Runtime; clean, it passes."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "benchmarks/test_approaches.py",
            "-k",
            "test_approach and fp16",
            "-p",
            "no:cacheprovider",
            "--backend",
            "torch",
            "--batch-size",
            "2",
            "--batches",
            "2",
            "--rounds",
            "3",
            "--warmup-rounds",
            "1",
            f"--engine-cache-dir={tmp_path / 'engines'}",
            f"--reference-cache-dir={tmp_path / 'reference'}",
        ],
        cwd=root,
        env=dict(os.environ, PYTEST_PLUGINS="tests.cpu_suite,tests.plant", PLANT=planted),
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    if fails:
        assert done.returncode == 1 and "fp16 [torch] differs from ONNX Runtime" in output, output[-3000:]
    else:
        assert done.returncode == 0 and "1 passed" in output, output[-3000:]


def test_a_bound_context_reaches_the_context_only_when_a_value_changes():
    class Counting:
        def __init__(self):
            self.calls = []

        def set_input_shape(self, name, shape):
            self.calls.append(("shape", name, shape))

        def set_tensor_address(self, name, address):
            self.calls.append(("address", name, address))

        def set_input_consumed_event(self, event):
            self.calls.append(("consumed", event))

    context = Counting()
    bound = BoundContext(context, "input")
    for _ in range(2):  # the second time round, nothing changed: no call
        bound.set_input_shape((128, 3, 224, 224))
        bound.set_tensor_address("input", 256)
        bound.set_tensor_address("output", 512)
        bound.set_input_consumed_event(None)
    bound.set_input_shape((1, 3, 224, 224))  # a batch of another size
    bound.set_tensor_address("input", 768)
    bound.set_input_consumed_event(7)
    bound.set_input_consumed_event(None)
    assert context.calls == [
        ("shape", "input", (128, 3, 224, 224)),
        ("address", "input", 256),
        ("address", "output", 512),
        ("consumed", None),
        ("shape", "input", (1, 3, 224, 224)),
        ("address", "input", 768),
        ("consumed", 7),
        ("consumed", None),
    ]
