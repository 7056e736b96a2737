"""The real TensorRT backend code, run against the contract double of ``tensorrt``
(tests/trt_double.py): on the CPU through the CUDA test double with ONNX Runtime, and on a
GPU with torch computing on the real streams. Every approach, multi_profile included,
checked against ONNX Runtime; each finding of the review against trtexec and Polygraphy
has a test here. This proves our calls and their order, not TensorRT's kernels or figures."""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
import threading

import numpy as np
import pytest

from tests import trt_double
from tests.conftest import reference_data
from trtbench import catalogue as cat
from trtbench import graphs as gr
from trtbench.engines import EngineCache, cache_key, engine_specs, multi_profile_batches
from trtbench.files import file_sha256
from trtbench.gpu import cuda
from trtbench.catalogue import NAMES, approach
from trtbench.gpu.approaches import approach_class
from trtbench.gpu.pipeline import Workload

BATCH, BATCHES = 8, 3
LIVE_NOTHING = {"memory": 0, "streams": 0, "events": 0, "graphs": 0, "graph_execs": 0}


@contextlib.contextmanager
def backend_on(compute):
    """``trtbench.gpu.backends.tensorrt_backend`` imported against the double, then forgotten."""
    name = "trtbench.gpu.backends.tensorrt_backend"
    saved = {k: sys.modules.get(k) for k in ("tensorrt", name)}
    sys.modules["tensorrt"] = trt_double.install(compute)
    sys.modules.pop(name, None)
    try:
        yield importlib.import_module(name)
    finally:
        for key, value in saved.items():
            if value is None:
                sys.modules.pop(key, None)
            else:
                sys.modules[key] = value
        import trtbench.gpu.backends as package

        package.__dict__.pop("tensorrt_backend", None)


@pytest.fixture(scope="module")
def onnx_files(net, spec, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    return {(v, fp16): gr.export_onnx(net, spec, folder / f"{v}{'-fp16' if fp16 else ''}.onnx", v, fp16)
            for v in cat.GRAPH_VARIANTS for fp16 in (False, True)}


@pytest.fixture(scope="module")
def data(onnx_files):
    """Batches of BATCH images per graph variant and the ONNX Runtime reference of its fp32 graph."""
    return reference_data({v: onnx_files[v, False] for v in cat.GRAPH_VARIANTS}, BATCH, BATCHES)


def build_engines(trtb, spec, onnx_files, cache_dir, force_strongly_typed=False):
    """Every engine through the real build path: EngineCache, timing cache, layer information."""
    caps = trtb.capabilities()
    specs = engine_specs(BATCH, caps, spec.image_size, force_strongly_typed=force_strongly_typed)
    cache = EngineCache(cache_dir)
    engines = {}
    for kind, engine_spec in specs.items():
        onnx = onnx_files[engine_spec.graph_variant, engine_spec.onnx_fp16]
        key = cache_key(engine_spec, file_sha256(onnx), caps.version, "double", "0.0")
        entry = cache.get_or_build(key, lambda s=engine_spec, o=onnx: trtb.build_serialized_engine(
            s, o, cache.timing_cache_path(caps.version, "double")), trtb.deserialize_problem,
            lambda d, s=engine_spec: trtb.layer_information(d, s))
        engines[kind] = trtb.TensorRTEngine(entry.data, engine_spec, spec)
    return engines, cache


def workload_for(cls, data, case_kwargs):
    inputs, refs = data[approach(cls.name).graph_variant]
    if cls.name == "multi_profile":
        small, large = multi_profile_batches(BATCH)
        sizes = [small if i % 2 == 0 else large for i in range(BATCHES)]
    else:
        sizes = [case_kwargs.get("batch", BATCH)] * BATCHES
    return Workload([x[:b] for x, b in zip(inputs, sizes)], [{k: v[:b] for k, v in r.items()} for r, b in zip(refs, sizes)],
                    approach(cls.name).host_memory)


CASES = [(name, {}) for name in NAMES if name != "multi_profile"] + [
    ("multi_profile", {"variant": "two_profiles"}), ("multi_profile", {"variant": "one_profile"}),
    ("cuda_graph", {"batch": 1})]


def owned(pipeline):
    """What a pipeline owns, its parts' (multi_context) included."""
    for thing in pipeline._owned:
        yield thing
        if hasattr(thing, "_owned"):
            yield from owned(thing)


def run_every_approach(trtb, engines, data):
    """Open, run and check every approach through the backend; returns the contexts' violations."""
    for name, kwargs in CASES:
        cls = approach_class(name)
        kind = "fp16" if kwargs.get("variant") == "one_profile" else approach(name).engine_kind
        extra = {k: v for k, v in kwargs.items() if k != "batch"}
        with cls.open(engines[kind], workload_for(cls, data, kwargs), **extra) as pipeline:
            for _ in range(2):
                pipeline.prepare_round()
                pipeline.run_round()
                result = pipeline.check_round()
                assert result.passed, f"{name} {kwargs}: {result.describe()}"
            pipeline.finish()
            contexts = [c.context for c in owned(pipeline) if isinstance(c, trtb.TensorRTContext)]
            assert contexts and all(c.nvtx_verbosity == trtb.RUN_NVTX_VERBOSITY for c in contexts)
            assert all(not c.violations for c in contexts), [c.violations for c in contexts]
            metrics = pipeline.extra_metrics()
            if "graph_launches" in metrics:
                assert metrics["graph_fallback_reason"] is None and metrics["graph_launches"] > 0, metrics


def test_every_approach_runs_through_the_real_backend_on_the_cpu(runtime, spec, onnx_files, data, tmp_path):
    with backend_on(trt_double.OrtOnFakeCuda(runtime)) as trtb:
        engines, _ = build_engines(trtb, spec, onnx_files, tmp_path)
        run_every_approach(trtb, engines, data)
        assert runtime.live() == LIVE_NOTHING


def test_the_strongly_typed_fp16_path_builds_from_the_fp16_onnx(runtime, spec, onnx_files, data, tmp_path):
    with backend_on(trt_double.OrtOnFakeCuda(runtime)) as trtb:
        engines, _ = build_engines(trtb, spec, onnx_files, tmp_path, force_strongly_typed=True)
        assert engines["fp16"].engine.desc["onnx_path"].endswith("logits-fp16.onnx") and engines["fp16"].engine.desc["fp16"]
        cls = approach_class("uint8_input")
        with cls.open(engines["fp16_uint8"], workload_for(cls, data, {})) as pipeline:
            pipeline.prepare_round()
            pipeline.run_round()
            result = pipeline.check_round()
        assert result.passed and result.rel_l2 > 0  # fp16 weights: close, not equal


# ---------------------------------------------------------------- the review's findings, one by one

@pytest.fixture
def trt_cpu(runtime, spec, onnx_files, tmp_path):
    with backend_on(trt_double.OrtOnFakeCuda(runtime)) as trtb:
        engines, cache = build_engines(trtb, spec, onnx_files, tmp_path)
        yield trtb, engines, cache


def test_1_benchmarked_contexts_run_with_layer_names_only_nvtx(trt_cpu):
    trtb, engines, _ = trt_cpu
    context = engines["fp16"].create_execution_context()
    assert context.context.nvtx_verbosity == trt_double.ProfilingVerbosity.LAYER_NAMES_ONLY
    assert engines["fp16"].engine.build_verbosity == trt_double.ProfilingVerbosity.DETAILED  # the build stays detailed
    built_without = trt_double.Runtime(None).deserialize_cuda_engine(json.dumps(
        dict(engines["fp16"].engine.desc, verbosity="NONE")).encode())
    engines["fp16"].engine = built_without  # an engine built below LAYER_NAMES_ONLY: the setter is refused
    with pytest.raises(trtb.TensorRTError, match="nvtx_verbosity stayed ProfilingVerbosity.NONE"):
        engines["fp16"].create_execution_context()


def test_2_cuda_graph_uses_one_context_per_graph(trt_cpu, data):
    """The pipeline captures each input slot on a context of its own; capturing one context
    twice with other addresses (the old design) is refused by the double."""
    trtb, engines, _ = trt_cpu
    cls = approach_class("cuda_graph")
    with cls.open(engines["fp16"], workload_for(cls, data, {})) as pipeline:
        assert len({id(c) for c in pipeline.slot_contexts}) == 2 and pipeline.captures == 2
        ctx, stream = pipeline.slot_contexts[0], pipeline.compute_stream
        ctx.set_tensor_address(pipeline.input_name, pipeline.d_inputs[1].ptr)  # re-bound to the other slot
        with pytest.raises(trtb.TensorRTError, match="context 0: execute_async_v3 returned False"):
            ctx.capture_graph(stream)
        assert ctx.context.violations == ["captured again with other shapes or addresses: one graph per context"]


def test_3_a_failed_capture_is_destroyed_and_its_error_cleared(trt_cpu, runtime, data, monkeypatch):
    trtb, engines, _ = trt_cpu
    monkeypatch.setattr(trtb.TensorRTContext, "enqueue", lambda self, stream: cuda.cuda_call(
        "cudaGraphLaunch", runtime.cudaGraphLaunch(0, stream.handle)))  # an enqueue that invalidates the capture
    with cuda.Stream() as stream:
        with pytest.raises(cuda.CudaError, match="cudaGraphLaunch"):
            engines["fp16"].create_execution_context().capture_graph(stream)
        assert runtime.last_error == runtime.cudaError_t.cudaSuccess and runtime.graphs == {}
        stream.synchronize()  # the stream works again


def test_4_a_refused_profile_names_the_profile_and_context(trt_cpu):
    trtb, engines, _ = trt_cpu
    engine = engines["multi_profile"]
    context = engine.create_execution_context()
    with cuda.Stream() as stream:
        context.set_optimization_profile(1, stream)
        with pytest.raises(trtb.TensorRTError, match=r"profile 2 does not exist \(engine 'multi_profile' has 2\)"):
            context.set_optimization_profile(2, stream)
        # our range check sees 2 profiles; TensorRT's engine only 1: its binding raises RuntimeError
        context.context.engine = trt_double.ICudaEngine(dict(engine.engine.desc, profiles=engine.engine.desc["profiles"][:1]))
        with pytest.raises(trtb.TensorRTError, match=r"context 0: set_optimization_profile_async\(1\) of engine "
                                                     r"'multi_profile' failed: Error in set optimization profile async"):
            context.set_optimization_profile(1, stream)


def test_4b_profile_order_shapes_outside_the_profile_are_refused(trt_cpu):
    trtb, engines, _ = trt_cpu
    context = engines["multi_profile"].create_execution_context()
    small, large = multi_profile_batches(BATCH)
    context.set_input_shape("input0", (small, 3, 224, 224))  # profile 0 by default
    with pytest.raises(trtb.TensorRTError, match=r"set_input_shape\('input0', \(8, 3, 224, 224\)\) \(outside"):
        context.set_input_shape("input0", (large, 3, 224, 224))
    with cuda.Stream() as stream:
        context.set_optimization_profile(1, stream)
    with pytest.raises(trtb.TensorRTError, match="unresolved shape"):  # the profile change cleared the shapes
        context.get_tensor_shape("output0")
    context.set_input_shape("input0", (large, 3, 224, 224))
    assert context.get_tensor_shape("output0") == (large, 1000)


def test_5_an_unknown_tensor_is_named(trt_cpu):
    trtb, engines, _ = trt_cpu
    context = engines["fp16"].create_execution_context()
    with pytest.raises(trtb.TensorRTError, match="engine 'fp16' has no tensor 'logits' \\(inputs \\['input0'\\], "
                                                 "outputs \\['output0'\\]\\)"):
        context.get_tensor_shape("logits")
    with pytest.raises(ValueError):  # what the binding itself does without our check
        len(context.context.get_tensor_shape("logits"))


def test_6_the_inspector_gets_a_context_with_shapes(trt_cpu):
    trtb, engines, cache = trt_cpu
    layers = sorted(cache.root.glob("fp16_postprocess-*.layers.json"))
    info = json.loads(layers[0].read_text())
    dims = {b["Name"]: b["Dimensions"] for b in info["Bindings"]}
    assert dims == {"input0": [BATCH, 3, 224, 224], "output0": [BATCH, 1000], "top5_prob": [BATCH, 5],
                    "top5_class": [BATCH, 5]}  # resolved, not -1
    assert all(b["Format/Datatype"] for b in info["Bindings"])


def test_7_concurrent_builds_keep_every_timing_cache_entry(runtime, spec, onnx_files, tmp_path):
    with backend_on(trt_double.OrtOnFakeCuda(runtime)) as trtb:
        caps = trtb.capabilities()
        specs = engine_specs(BATCH, caps, spec.image_size)
        path = tmp_path / "timing.cache"
        barrier = threading.Barrier(3)

        def build(kind):
            barrier.wait()
            s = specs[kind]
            trtb.build_serialized_engine(s, onnx_files[s.graph_variant, s.onnx_fp16], path)

        threads = [threading.Thread(target=build, args=(k,)) for k in ("fp32", "fp16", "multi_profile")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        entries = json.loads(path.read_text())
        assert len(entries) == 3  # each build's entry survived the others' writes


def test_8_an_engine_with_other_io_types_is_refused(runtime, spec, onnx_files, tmp_path):
    with backend_on(trt_double.OrtOnFakeCuda(runtime)) as trtb:
        engines, _ = build_engines(trtb, spec, onnx_files, tmp_path)
        desc = engines["fp16_postprocess"].engine.desc
        desc["io"] = [(n, mode, "INT64" if n == "top5_class" else t, s) for n, mode, t, s in desc["io"]]
        data = json.dumps(desc).encode()
        with pytest.raises(trtb.TensorRTError, match="tensor 'top5_class' is DataType.INT64, the pipelines need int32"):
            trtb.TensorRTEngine(data, engines["fp16_postprocess"].spec, spec)
        logits = engines["fp16"].engine.desc
        with pytest.raises(trtb.TensorRTError, match="I/O tensors"):
            trtb.TensorRTEngine(json.dumps(logits).encode(), engines["fp16_postprocess"].spec, spec)


def test_a_missing_address_is_an_error_not_a_silent_enqueue(trt_cpu):
    trtb, engines, _ = trt_cpu
    context = engines["fp16"].create_execution_context()
    context.set_input_shape("input0", (BATCH, 3, 224, 224))
    with cuda.Stream() as stream, pytest.raises(trtb.TensorRTError, match="context 0: execute_async_v3 returned False"):
        context.enqueue(stream)


# ---------------------------------------------------------------- on the GPU

@pytest.mark.gpu
def test_every_approach_runs_through_the_real_backend_on_the_gpu(net, spec, onnx_files, data, tmp_path):
    """torch computes the network on the streams the backend hands the double."""
    import torch

    modules = {}
    for (variant, fp16), path in onnx_files.items():
        def make(engine_fp16, variant=variant):
            graph = gr.classifier_graph(net, variant, fp16=engine_fp16)
            return graph.to(device="cuda", memory_format=torch.channels_last).eval()
        modules[file_sha256(path)] = make
    with backend_on(trt_double.TorchOnGpu(modules)) as trtb:
        engines, _ = build_engines(trtb, spec, onnx_files, tmp_path)
        run_every_approach(trtb, engines, data)
        for engine in engines.values():
            engine.close()
    torch.cuda.synchronize()
    assert np.isfinite(torch.cuda.memory_allocated())
