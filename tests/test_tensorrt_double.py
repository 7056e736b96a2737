"""The real TensorRT backend code, run against the contract double of ``tensorrt``
(tests/trt_double.py) in both of its modes, the API of TensorRT 10.x and of 11.x (ids
``trt10``, ``trt11``): on the CPU through the CUDA test double with ONNX Runtime, and on a
GPU with torch computing on the real streams. Every approach, multi_profile included,
checked against ONNX Runtime; each finding of the reviews against trtexec, Polygraphy and
TensorRT's sources has a test here. This proves our calls and their order, not TensorRT's
kernels or figures."""

from __future__ import annotations

import json
import sys
import threading
import types

import numpy as np
import pytest

from tests import trt_double
from tests.conftest import reference_data
from trtbench import catalogue as cat
from trtbench import graphs as gr
from trtbench.catalogue import NAMES, approach
from trtbench.engines import EngineCache, cache_key, engine_specs, multi_profile_batches
from trtbench.files import file_sha256
from trtbench.gpu import cuda
from trtbench.gpu.approaches import approach_class
from trtbench.gpu.pipeline import Pipeline, Workload

BATCH, BATCHES = 8, 3
LIVE_NOTHING = {"memory": 0, "streams": 0, "events": 0, "graphs": 0, "graph_execs": 0}
MODES = list(trt_double.MODES)  # "10.x", "11.x"
MODE_IDS = ["trt10", "trt11"]


@pytest.fixture(params=MODES, ids=MODE_IDS)
def mode(request):
    """Every TensorRT test runs against the API of 10.x and of 11.x."""
    return request.param


@pytest.fixture(scope="module")
def onnx_files(net, spec, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    return {
        (v, fp16): gr.export_onnx(net, spec, folder / f"{v}{'-fp16' if fp16 else ''}.onnx", v, fp16)
        for v in cat.GRAPH_VARIANTS
        for fp16 in (False, True)
    }


@pytest.fixture(scope="module")
def data(onnx_files):
    """Batches of BATCH images per graph variant and the ONNX Runtime reference of its fp32 graph."""
    return reference_data({v: onnx_files[v, False] for v in cat.GRAPH_VARIANTS}, BATCH, BATCHES)


class Engines:
    """Every engine through the real build path (EngineCache, timing cache, layer
    information), built when first asked for: ``engines[kind]`` at BATCH, ``engines[kind, b]``
    with its profile's opt at batch b."""

    def __init__(self, trtb, spec, onnx_files, cache_dir):
        self.trtb, self.spec, self.onnx_files = trtb, spec, onnx_files
        self.caps = trtb.capabilities()
        self.cache = EngineCache(cache_dir)
        self.made = {}

    def __getitem__(self, key):
        kind, batch = key if isinstance(key, tuple) else (key, BATCH)
        if (kind, batch) not in self.made:
            tuned = {} if batch == BATCH else {"opt_batch": batch}  # the session's engines, or one tuned for batch
            engine_spec = engine_specs(BATCH, self.caps, self.spec.image_size, **tuned)[kind]
            onnx = self.onnx_files[engine_spec.graph_variant, engine_spec.onnx_fp16]
            key = cache_key(engine_spec, file_sha256(onnx), self.caps.version, "double", "0.0")
            entry = self.cache.get_or_build(
                key,
                lambda: self.trtb.build_serialized_engine(
                    engine_spec, onnx, self.cache.timing_cache_path(self.caps.version, "double")
                ),
                self.trtb.deserialize_problem,
                lambda d: self.trtb.layer_information(d, engine_spec),
            )
            self.made[kind, batch] = self.trtb.TensorRTEngine(entry.data, engine_spec, self.spec)
        return self.made[kind, batch]

    def close(self):
        for engine in self.made.values():
            engine.close()


def workload_for(cls, data, case_kwargs):
    inputs, refs = data[approach(cls.name).graph_variant]
    if cls.name == "multi_profile":
        small, large = multi_profile_batches(BATCH)
        sizes = [small if i % 2 == 0 else large for i in range(BATCHES)]
    else:
        sizes = [case_kwargs.get("batch", BATCH)] * BATCHES
    return Workload(
        [x[:b] for x, b in zip(inputs, sizes)],
        [{k: v[:b] for k, v in r.items()} for r, b in zip(refs, sizes)],
        approach(cls.name).host_memory,
    )


CASES = [(name, {}) for name in NAMES if name != "multi_profile"] + [
    ("multi_profile", {"variant": "two_profiles"}),
    ("multi_profile", {"variant": "one_profile"}),
    ("cuda_graph", {"batch": 1}),
]


def engine_for(engines, cls, kwargs):
    kind = "fp16" if kwargs.get("variant") == "one_profile" else approach(cls.name).engine_kind
    return engines[kind, kwargs.get("batch", BATCH)]


def owned(pipeline):
    """What a pipeline owns, its parts' (multi_context) included."""
    for thing in pipeline._owned:
        yield thing
        if hasattr(thing, "_owned"):
            yield from owned(thing)


def run_every_approach(trtb, engines, data):
    """Open, run and check every approach through the backend."""
    for name, kwargs in CASES:
        cls = approach_class(name)
        extra = {k: v for k, v in kwargs.items() if k != "batch"}
        with cls.open(engine_for(engines, cls, kwargs), workload_for(cls, data, kwargs), **extra) as pipeline:
            for _ in range(2):
                pipeline.prepare_round()
                pipeline.run_round()
                result = pipeline.check_round()
                assert result.passed, f"{name} {kwargs}: {result.describe()}"
            pipeline.finish()
            contexts = [c.context for c in owned(pipeline) if isinstance(c, trtb.TensorRTContext)]
            assert contexts and all(c.nvtx_verbosity == trtb.RUN_NVTX_VERBOSITY for c in contexts)
            metrics = pipeline.extra_metrics()
            if "graph_launches" in metrics:
                assert metrics["graph_fallback_reason"] is None and metrics["graph_launches"] > 0, metrics
                assert all(c.captures == 1 for c in contexts)  # one graph per context


def errors(trtb):
    """What the double logged as TensorRT would (errors and warnings)."""
    assert trtb.trt is sys.modules["tensorrt"]
    return trtb.trt.api.log


def test_every_approach_runs_through_the_real_backend_on_the_cpu(mode, runtime, spec, onnx_files, data, tmp_path):
    with trt_double.backend_on(trt_double.OrtOnFakeCuda(runtime), mode) as trtb:
        engines = Engines(trtb, spec, onnx_files, tmp_path)
        run_every_approach(trtb, engines, data)
        assert errors(trtb) == []
        engines.close()
        assert runtime.live() == LIVE_NOTHING


@pytest.fixture
def trt_cpu(mode, runtime, spec, onnx_files, tmp_path):
    with trt_double.backend_on(trt_double.OrtOnFakeCuda(runtime), mode) as trtb:
        engines = Engines(trtb, spec, onnx_files, tmp_path)
        yield trtb, engines, engines.cache
        engines.close()


# ---------------------------------------------------------------- the second review's findings


def test_finding1_the_uint8_engine_parses_and_an_intermediate_uint8_tensor_is_refused(
    trt_cpu, data, onnx_files, tmp_path
):
    """The uint8 graph feeds its input to a Cast; the double's parser refuses what
    onnx-tensorrt's importer refuses (a UINT8 tensor a node makes that is not an output)."""
    import onnx

    from tests.conftest import transpose_before_cast

    trtb, engines, _ = trt_cpu
    cls = approach_class("uint8_input")
    with cls.open(engines["fp16_uint8"], workload_for(cls, data, {})) as pipeline:
        pipeline.prepare_round()
        pipeline.run_round()
        assert pipeline.check_round().passed
    old = tmp_path / "uint8-old.onnx"
    onnx.save(transpose_before_cast(onnx.load(str(onnx_files["uint8", True]))), str(old))
    spec = engines["fp16_uint8"].spec
    with pytest.raises(
        trtb.TensorRTError,
        match=r"cannot parse .*uint8-old\.onnx:\n  In node .* \(Transpose\): "
        r"UNSUPPORTED_NODE: .*UINT8 types for intermediate tensors",
    ):
        trtb.build_serialized_engine(spec, old, tmp_path / "timing.cache")


def test_finding2_a_null_input_address_is_refused(trt_cpu):
    trtb, engines, _ = trt_cpu
    context = engines["fp16"].create_execution_context()
    with pytest.raises(trtb.TensorRTError, match=r"context 0: set_tensor_address\('input0'\) with a null address"):
        context.set_tensor_address("input0", 0)
    raw = context.context  # the double itself: 0 unbinds, and the enqueue fails
    with (
        cuda.DeviceBuffer((BATCH, 3, 224, 224)) as d_in,
        cuda.DeviceBuffer((BATCH, 1000)) as d_out,
        cuda.Stream() as stream,
    ):
        context.set_input_shape("input0", (BATCH, 3, 224, 224))
        context.set_tensor_address("output0", d_out.ptr)
        assert raw.set_tensor_address("input0", d_in.ptr) and raw.set_tensor_address("input0", 0)
        assert raw.execute_async_v3(stream.ptr) is False
        assert errors(trtb)[-1] == ("ERROR", "enqueueV3: address or shape not set for ['input0']")


def test_finding2_an_address_not_256_byte_aligned_is_refused(trt_cpu):
    trtb, engines, _ = trt_cpu
    context = engines["fp16"].create_execution_context()
    with cuda.DeviceBuffer((BATCH, 3, 224, 224)) as d_in:
        with pytest.raises(
            trtb.TensorRTError,
            match=r"set_tensor_address\('input0', 0x[0-9a-f]+\) \(TensorRT needs "
            r"256-byte alignment\) returned False",
        ):
            context.set_tensor_address("input0", d_in.ptr + 4)
        context.set_tensor_address("input0", d_in.ptr)  # cudaMalloc's own addresses are aligned


def test_finding2_the_stream_must_be_a_stream_handle(trt_cpu):
    trtb, engines, _ = trt_cpu
    context = engines["fp16"].create_execution_context()
    raw = context.context
    with (
        cuda.DeviceBuffer((BATCH, 3, 224, 224)) as d_in,
        cuda.DeviceBuffer((BATCH, 1000)) as d_out,
        cuda.Stream() as stream,
        cuda.Event() as event,
    ):
        context.set_input_shape("input0", (BATCH, 3, 224, 224))
        context.set_tensor_address("input0", d_in.ptr)
        context.set_tensor_address("output0", d_out.ptr)
        with pytest.raises(TypeError, match=r"execute_async_v3\(\): incompatible function arguments"):
            raw.execute_async_v3(stream)  # our Stream object, not its handle
        assert raw.execute_async_v3(event.ptr) is False  # a handle, but of an event
        with pytest.raises(trtb.TensorRTError, match="context 0: execute_async_v3 returned False"):
            context.enqueue(types.SimpleNamespace(ptr=event.ptr))
        context.enqueue(stream)


def test_finding2_a_profile_that_does_not_exist_is_named(trt_cpu):
    trtb, engines, _ = trt_cpu
    engine = engines["multi_profile"]
    assert engine.profile_batch_range(1) == (multi_profile_batches(BATCH)[1] // 2, BATCH + BATCH // 2)
    with pytest.raises(trtb.TensorRTError, match=r"engine 'multi_profile': profile 2 does not exist \(it has 2\)"):
        engine.profile_batch_range(2)
    shapes = engine.engine.get_tensor_profile_shape("input0", 2)  # what the binding returns: nbDims -1
    with pytest.raises(ValueError):
        len(shapes[0])
    with pytest.raises(IndexError):
        shapes[0][0]


def test_finding2_a_context_may_be_captured_again_with_new_addresses(trt_cpu, data):
    """TensorRT allows it (the double used to refuse it); the pipeline still keeps one graph
    per context, on a context per input slot."""
    _, engines, _ = trt_cpu
    cls = approach_class("cuda_graph")
    with cls.open(engines["fp16"], workload_for(cls, data, {})) as pipeline:
        assert len({id(c) for c in pipeline.slot_contexts}) == 2 and pipeline.captures == 2
        ctx, stream = pipeline.slot_contexts[0], pipeline.compute_stream
        ctx.set_tensor_address(pipeline.input_name, pipeline.d_inputs[1].ptr)  # re-bound to the other slot
        with ctx.capture_graph(stream):
            pass
        assert ctx.context.captures == 2


def test_finding2_11x_lacks_what_11x_removed(mode, runtime):
    trt = trt_double.install(trt_double.OrtOnFakeCuda(runtime), mode)
    removed = {
        "BuilderFlag.FP16": lambda: trt.BuilderFlag.FP16,
        "PreviewFeature.PROFILE_SHARING_0806": lambda: trt.PreviewFeature.PROFILE_SHARING_0806,
        "Builder.platform_has_fast_fp16": lambda: trt.Builder(trt.Logger()).platform_has_fast_fp16,
    }
    engine = trt.Runtime(trt.Logger()).deserialize_cuda_engine(
        json.dumps({"double": trt.__version__, "io": [], "verbosity": "DETAILED", "profiles": []}).encode()
    )
    removed.update(
        {
            "ICudaEngine.device_memory_size": lambda: engine.device_memory_size,
            "ICudaEngine.create_execution_context_without_device_memory": lambda: (
                engine.create_execution_context_without_device_memory
            ),
            "ICudaEngine.get_device_memory_size_for_profile": lambda: engine.get_device_memory_size_for_profile,
            "IExecutionContext.all_shape_inputs_specified": lambda: (
                engine.create_execution_context().all_shape_inputs_specified
            ),
        }
    )
    present = {}
    for name, get in removed.items():
        try:
            get()
            present[name] = True
        except AttributeError:
            present[name] = False
    assert present == {name: mode == "10.x" for name in removed}
    assert int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) == (1 if mode == "10.x" else 0)


def test_finding2_11x_networks_are_strongly_typed_whatever_the_flags(mode, runtime):
    trt = trt_double.install(trt_double.OrtOnFakeCuda(runtime), mode)
    builder = trt.Builder(trt.Logger())
    assert builder.create_network(0).strongly_typed is (mode == "11.x")
    assert builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)).strongly_typed


def test_finding3_fp16_engines_are_strongly_typed_from_the_fp16_onnx(trt_cpu, data):
    """10.x and 11.x build fp16 alike: a strongly typed network parsed from the fp16 ONNX, no
    BuilderFlag.FP16 (which let 10.x run the post-processing's Softmax and TopK in fp16)."""
    _, engines, _ = trt_cpu
    for kind in ("fp16", "multi_profile", "shared_profile", "fp16_postprocess", "fp16_uint8"):
        desc = engines[kind].engine.desc
        assert desc["strongly_typed"] and desc["fp16"] and desc["flags"] == [], (kind, desc["flags"])
        assert desc["onnx_path"].endswith("-fp16.onnx"), (kind, desc["onnx_path"])
    fp32 = engines["fp32"].engine.desc
    assert fp32["strongly_typed"] and not fp32["fp16"] and fp32["onnx_path"].endswith("logits.onnx")
    cls = approach_class("gpu_postprocess")
    with cls.open(engines["fp16_postprocess"], workload_for(cls, data, {})) as pipeline:
        pipeline.prepare_round()
        pipeline.run_round()
        result = pipeline.check_round()
    assert result.passed and result.rel_l2 > 0  # fp16 weights: close, not equal


def test_finding3_the_10x_double_refuses_the_fp16_flag_on_a_strongly_typed_network(runtime, onnx_files):
    trt = trt_double.install(trt_double.OrtOnFakeCuda(runtime), "10.x")
    builder = trt.Builder(trt.Logger())
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    assert trt.OnnxParser(network, builder.logger).parse(onnx_files["logits", True].read_bytes(), "x")
    config = builder.create_builder_config()
    profile = builder.create_optimization_profile()
    profile.set_shape("input0", (1, 3, 224, 224), (8, 3, 224, 224), (16, 3, 224, 224))
    config.add_optimization_profile(profile)
    config.set_flag(trt.BuilderFlag.FP16)
    assert builder.build_serialized_network(network, config) is None
    assert trt.api.log[-1] == ("ERROR", trt_double.STRONGLY_TYPED_FP16)


def count_binding_calls(trtb, monkeypatch):
    """Every binding call on a TensorRT context: (call, whether inside a compute span)."""
    in_span = threading.local()
    calls = []
    compute = Pipeline.compute

    def spanned(self, index, stream, launch):
        def flagged():
            in_span.on = True
            try:
                launch()
            finally:
                in_span.on = False

        compute(self, index, stream, flagged)

    monkeypatch.setattr(Pipeline, "compute", spanned)

    def spy(name):
        call = getattr(trtb.TensorRTContext, name)

        def spied(self, *args):
            calls.append((name, getattr(in_span, "on", False)))
            return call(self, *args)

        return spied

    for name in ("set_input_shape", "set_tensor_address", "set_input_consumed_event"):
        monkeypatch.setattr(trtb.TensorRTContext, name, spy(name))
    return calls


@pytest.mark.parametrize("name", ["overlap", "async_postprocess", "cuda_graph", "multi_context"])
def test_finding4_binding_happens_once_and_never_inside_the_compute_span(trt_cpu, data, monkeypatch, name):
    trtb, engines, _ = trt_cpu
    calls = count_binding_calls(trtb, monkeypatch)
    cls = approach_class(name)
    with cls.open(engines[approach(name).engine_kind], workload_for(cls, data, {})) as pipeline:
        calls.clear()  # what setup bound
        for _ in range(2):
            pipeline.prepare_round()
            pipeline.run_round()
            assert pipeline.check_round().passed
    assert not [c for c in calls if c[1]], "binding calls inside the compute span"
    if name == "multi_context":  # one context for two input slots: the input and its event follow the slot
        assert {name for name, _ in calls} == {"set_tensor_address", "set_input_consumed_event"}
    else:
        assert calls == []  # a context per input slot, bound at setup


def test_finding5_each_measured_batch_size_gets_an_engine_whose_opt_it_is(trt_cpu, runtime, spec, onnx_files, tmp_path):
    """The engines fixture's build gives a batch-1 case an engine tuned for batch 1 (and a
    cache entry of its own); the session's batch keeps its own."""
    from fixtures.engines import build_tensorrt_engine

    options = types.SimpleNamespace(
        batch_size=BATCH,
        max_aux_streams=None,
        batch_sweep=(32,),
        engine_cache_dir=tmp_path / "engines",
        rebuild_engines=False,
    )
    session = types.SimpleNamespace(options=options, report_line=lambda line: None)

    def files(variant, fp16):
        return onnx_files[variant, fp16]

    built = {b: build_tensorrt_engine("fp16", session, spec, files, b) for b in (None, 1, 32)}
    assert {b: e.engine.desc["profiles"][0]["input0"][1][0] for b, e in built.items()} == {None: BATCH, 1: 1, 32: 32}
    assert {b: e.engine.desc["profiles"][0]["input0"][2][0] for b, e in built.items()} == {None: 32, 1: 32, 32: 32}
    assert len(list((tmp_path / "engines").glob("fp16-*.engine"))) == 3


def test_finding6_peak_memory_counts_every_context(trt_cpu, data):
    trtb, engines, _ = trt_cpu
    for name, kwargs in CASES:
        cls = approach_class(name)
        extra = {k: v for k, v in kwargs.items() if k != "batch"}
        engine = engine_for(engines, cls, kwargs)
        with cls.open(engine, workload_for(cls, data, kwargs), **extra) as pipeline:
            made = sum(isinstance(c, trtb.TensorRTContext) for c in owned(pipeline))
            assert pipeline.contexts_used == made, (name, kwargs)
            assert pipeline.peak_device_bytes() == (
                cuda.device_allocations.peak + made * engine.engine.device_memory_size_v2
            ), (name, kwargs)


def test_finding7_one_logger_for_every_builder_and_runtime(trt_cpu, data):
    trtb, engines, _ = trt_cpu
    for kind in ("fp32", "fp16", "fp16_postprocess"):
        engines[kind].create_execution_context()  # builds, inspects and deserializes
    assert [line for line in errors(trtb) if "logger" in line[1]] == []
    assert sys.modules["tensorrt"].api.logger is trtb.LOGGER


# ---------------------------------------------------------------- the first review's findings


def test_benchmarked_contexts_run_with_layer_names_only_nvtx(trt_cpu):
    trtb, engines, _ = trt_cpu
    context = engines["fp16"].create_execution_context()
    assert context.context.nvtx_verbosity == trt_double.ProfilingVerbosity.LAYER_NAMES_ONLY
    assert engines["fp16"].engine.build_verbosity == trt_double.ProfilingVerbosity.DETAILED  # the build stays detailed
    engines["fp16"].engine = trtb.deserialize(json.dumps(dict(engines["fp16"].engine.desc, verbosity="NONE")).encode())
    with pytest.raises(trtb.TensorRTError, match="nvtx_verbosity stayed ProfilingVerbosity.NONE"):
        engines["fp16"].create_execution_context()  # an engine built below LAYER_NAMES_ONLY: the setter is refused


def test_a_failed_capture_is_destroyed_and_its_error_cleared(trt_cpu, runtime, monkeypatch):
    trtb, engines, _ = trt_cpu
    monkeypatch.setattr(
        trtb.TensorRTContext,
        "enqueue",
        lambda self, stream: cuda.cuda_call("cudaGraphLaunch", runtime.cudaGraphLaunch(0, stream.handle)),
    )  # an enqueue that invalidates the capture
    with cuda.Stream() as stream:
        with pytest.raises(cuda.CudaError, match="cudaGraphLaunch"):
            engines["fp16"].create_execution_context().capture_graph(stream)
        assert runtime.last_error == runtime.cudaError_t.cudaSuccess and runtime.graphs == {}
        stream.synchronize()  # the stream works again


def test_a_refused_profile_names_the_profile_and_context(trt_cpu):
    trtb, engines, _ = trt_cpu
    engine = engines["multi_profile"]
    context = engine.create_execution_context()
    with cuda.Stream() as stream:
        context.set_optimization_profile(1, stream)
        with pytest.raises(trtb.TensorRTError, match=r"profile 2 does not exist \(engine 'multi_profile' has 2\)"):
            context.set_optimization_profile(2, stream)
        # our range check sees 2 profiles; TensorRT's engine only 1: its binding raises RuntimeError
        context.context.engine = type(engine.engine)(
            engine.engine.api, dict(engine.engine.desc, profiles=engine.engine.desc["profiles"][:1])
        )
        with pytest.raises(
            trtb.TensorRTError,
            match=r"context 0: set_optimization_profile_async\(1\) of engine "
            r"'multi_profile' failed: Error in set optimization profile async",
        ):
            context.set_optimization_profile(1, stream)


def test_profile_order_shapes_outside_the_profile_are_refused(trt_cpu):
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


def test_an_unknown_tensor_is_named(trt_cpu):
    trtb, engines, _ = trt_cpu
    context = engines["fp16"].create_execution_context()
    with pytest.raises(
        trtb.TensorRTError,
        match="engine 'fp16' has no tensor 'logits' \\(inputs \\['input0'\\], outputs \\['output0'\\]\\)",
    ):
        context.get_tensor_shape("logits")
    with pytest.raises(ValueError):  # what the binding itself does without our check
        len(context.context.get_tensor_shape("logits"))


def test_the_inspector_gets_a_context_with_shapes(trt_cpu):
    _, engines, cache = trt_cpu
    engines["fp16_postprocess"]
    layers = sorted(cache.root.glob("fp16_postprocess-*.layers.json"))
    info = json.loads(layers[0].read_text())
    dims = {b["Name"]: b["Dimensions"] for b in info["Bindings"]}
    assert dims == {
        "input0": [BATCH, 3, 224, 224],
        "output0": [BATCH, 1000],
        "top5_prob": [BATCH, 5],
        "top5_class": [BATCH, 5],
    }  # resolved, not -1
    assert all(b["Format/Datatype"] for b in info["Bindings"])


def test_concurrent_builds_keep_every_timing_cache_entry(mode, runtime, spec, onnx_files, tmp_path):
    with trt_double.backend_on(trt_double.OrtOnFakeCuda(runtime), mode) as trtb:
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


def test_an_engine_with_other_io_types_is_refused(trt_cpu, spec):
    trtb, engines, _ = trt_cpu
    desc = dict(engines["fp16_postprocess"].engine.desc)
    desc["io"] = [(n, mode, "INT64" if n == "top5_class" else t, s) for n, mode, t, s in desc["io"]]
    with pytest.raises(trtb.TensorRTError, match="tensor 'top5_class' is DataType.INT64, the pipelines need int32"):
        trtb.TensorRTEngine(json.dumps(desc).encode(), engines["fp16_postprocess"].spec, spec)
    logits = engines["fp16"].engine.desc
    with pytest.raises(trtb.TensorRTError, match="I/O tensors"):
        trtb.TensorRTEngine(json.dumps(logits).encode(), engines["fp16_postprocess"].spec, spec)


def test_a_missing_address_is_an_error_not_a_silent_enqueue(trt_cpu):
    trtb, engines, _ = trt_cpu
    context = engines["fp16"].create_execution_context()
    context.set_input_shape("input0", (BATCH, 3, 224, 224))
    with cuda.Stream() as stream, pytest.raises(trtb.TensorRTError, match="context 0: execute_async_v3 returned False"):
        context.enqueue(stream)


def test_an_engine_built_by_one_release_does_not_deserialize_in_the_other(runtime, spec, onnx_files, tmp_path):
    built = {}
    for mode in MODES:
        with trt_double.backend_on(trt_double.OrtOnFakeCuda(runtime), mode) as trtb:
            Engines(trtb, spec, onnx_files, tmp_path / mode)["fp16"].close()
            built[mode] = next((tmp_path / mode).glob("fp16-*.engine")).read_bytes()
    with trt_double.backend_on(trt_double.OrtOnFakeCuda(runtime), "11.x") as trtb:
        assert trtb.deserialize_problem(built["11.x"]) is None
        assert trtb.deserialize_problem(built["10.x"]) == "Runtime.deserialize_cuda_engine returned None"


# ---------------------------------------------------------------- on the GPU


@pytest.mark.gpu
def test_every_approach_runs_through_the_real_backend_on_the_gpu(mode, net, spec, onnx_files, data, tmp_path):
    """torch computes the network on the streams the backend hands the double."""
    import torch

    modules = {}
    for (variant, _fp16), path in onnx_files.items():

        def make(engine_fp16, variant=variant):
            graph = gr.classifier_graph(net, variant, fp16=engine_fp16)
            return graph.to(device="cuda", memory_format=torch.channels_last).eval()

        modules[file_sha256(path)] = make
    with trt_double.backend_on(trt_double.TorchOnGpu(modules), mode) as trtb:
        engines = Engines(trtb, spec, onnx_files, tmp_path)
        run_every_approach(trtb, engines, data)
        assert errors(trtb) == []
        engines.close()
    torch.cuda.synchronize()
    assert np.isfinite(torch.cuda.memory_allocated())
