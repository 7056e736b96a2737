"""TensorRT backend: engine builds, inspection and ``execute_async_v3``.

Every TensorRT call of the suite is in this module, in a few small functions, and is
type-checked against ``tensorrt-stubs`` (10.13 API); its calls and their order run on a
GPU against the contract double in ``tests/trt_double.py``. Every boolean TensorRT
returns is checked, and calls that raise in the Python binding
(``set_optimization_profile_async``) are wrapped; an error names the tensor, profile or
engine. The decisions these functions follow (shapes, flags, fp16 path) come from
``trtbench.engines``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tensorrt as trt
from filelock import FileLock

from trtbench.catalogue import graph_io
from trtbench.engines import EngineSpec, TrtCapabilities
from trtbench.files import write_atomic
from trtbench.gpu.backends.base import Engine, ExecutionContext
from trtbench.gpu.cuda import Stream

_NUMPY_DTYPES: dict[trt.DataType, np.dtype[Any]] = {
    trt.DataType.FLOAT: np.dtype(np.float32),
    trt.DataType.HALF: np.dtype(np.float16),
    trt.DataType.INT32: np.dtype(np.int32),
    trt.DataType.INT64: np.dtype(np.int64),
    trt.DataType.UINT8: np.dtype(np.uint8),
}
# Benchmarked contexts run with layer names only (trtexec's default): engines are built with
# DETAILED profiling verbosity for the layer information, which "will generally increase
# latency in enqueueV3()" (NvInferRuntime.h) if a context keeps it.
RUN_NVTX_VERBOSITY = trt.ProfilingVerbosity.LAYER_NAMES_ONLY


class TensorRTError(RuntimeError):
    pass


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise TensorRTError(f"TensorRT: {what} returned False")


# TensorRT keeps one logger per process: a builder or runtime given another one warns and
# keeps the first (NVIDIA/TensorRT#1475), so every builder and runtime gets this one.
LOGGER = trt.Logger(trt.Logger.WARNING)


def _logger() -> trt.ILogger:
    return LOGGER


def capabilities() -> TrtCapabilities:
    return TrtCapabilities.detect(trt)


def build_serialized_engine(spec: EngineSpec, onnx_path: Path, timing_cache_path: Path) -> bytes:
    """Parse the ONNX and build ``spec``'s engine; raise with every parser error on failure."""
    if not onnx_path.is_file():
        raise FileNotFoundError(f"engine {spec.name!r}: ONNX file {onnx_path} does not exist")
    if spec.fp16_path not in (None, "strongly_typed"):
        raise TensorRTError(f"engine {spec.name!r}: fp16 path {spec.fp16_path!r}; the suite builds fp16 strongly typed")
    logger = _logger()
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.BuilderFlag, "FP16"):
        # Weak typing still exists (10.x): ask for a strongly typed network, as 11.x builds every
        # one, so that fp16 engines run in the fp16 ONNX's precision on both (an upgrade changes
        # kernels, not precision); fp32 engines run the fp32 graph as it is.
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes(), str(onnx_path)):
        errors = "\n  ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise TensorRTError(f"engine {spec.name!r}: cannot parse {onnx_path}:\n  {errors}")

    config = builder.create_builder_config()
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # for the layer information; contexts run lower
    if spec.max_aux_streams is not None:
        config.max_aux_streams = spec.max_aux_streams
    if spec.profile_sharing_flag:
        config.set_preview_feature(trt.PreviewFeature.PROFILE_SHARING_0806, True)  # < 10.0 only
    input_name = network.get_input(0).name
    for index, (lo, opt, hi) in enumerate(spec.profiles):
        profile = builder.create_optimization_profile()
        profile.set_shape(
            input_name,
            trt.Dims([lo, *spec.input_shape]),
            trt.Dims([opt, *spec.input_shape]),
            trt.Dims([hi, *spec.input_shape]),
        )
        if config.add_optimization_profile(profile) < 0:
            raise TensorRTError(f"engine {spec.name!r}: profile {index} ({lo}/{opt}/{hi}) rejected")

    lock = FileLock(str(timing_cache_path) + ".lock")  # other sessions build other engines meanwhile
    with lock:
        timing_cache = config.create_timing_cache(timing_cache_path.read_bytes() if timing_cache_path.exists() else b"")
    _check(config.set_timing_cache(timing_cache, False), "IBuilderConfig.set_timing_cache")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise TensorRTError(f"engine {spec.name!r} failed to build with options {spec}")
    with lock:  # merge what others wrote since we read it, then replace the file
        if timing_cache_path.exists():
            theirs = config.create_timing_cache(timing_cache_path.read_bytes())
            _check(timing_cache.combine(theirs, True), f"ITimingCache.combine({timing_cache_path.name})")
        write_atomic(timing_cache_path, bytes(memoryview(timing_cache.serialize())))
    return bytes(memoryview(serialized))


def deserialize(data: bytes) -> trt.ICudaEngine:
    engine = trt.Runtime(_logger()).deserialize_cuda_engine(data)
    if engine is None:
        raise TensorRTError("Runtime.deserialize_cuda_engine returned None")
    return engine


def deserialize_problem(data: bytes) -> str | None:
    """None if the bytes deserialize on this GPU and TensorRT, else why not (cache check)."""
    try:
        deserialize(data)
    except Exception as exc:
        return str(exc)
    return None


def layer_information(data: bytes, spec: EngineSpec) -> str:
    """The engine inspector's JSON (complete with DETAILED profiling verbosity), given an
    execution context whose input shapes are set (each profile's opt batch for profile
    0), so dynamic dimensions are resolved and formats are shown."""
    engine = deserialize(data)
    context = engine.create_execution_context()
    if context is None:
        raise TensorRTError(f"engine {spec.name!r}: create_execution_context returned None (inspector)")
    input_name = next(
        engine.get_tensor_name(i)
        for i in range(engine.num_io_tensors)
        if engine.get_tensor_mode(engine.get_tensor_name(i)) == trt.TensorIOMode.INPUT
    )
    opt = spec.profiles[0][1]
    _check(
        context.set_input_shape(input_name, [opt, *spec.input_shape]),
        f"engine {spec.name!r}: set_input_shape({input_name!r}, batch {opt}) for the inspector",
    )
    inspector = engine.create_engine_inspector()
    inspector.execution_context = context
    return inspector.get_engine_information(trt.LayerInformationFormat.JSON)


class TensorRTContext(ExecutionContext):
    def __init__(self, engine: TensorRTEngine, index: int) -> None:
        context = engine.engine.create_execution_context()
        if context is None:
            raise TensorRTError(
                f"engine {engine.spec.name!r}: create_execution_context returned None (context {index})"
            )
        context.nvtx_verbosity = RUN_NVTX_VERBOSITY
        if context.nvtx_verbosity != RUN_NVTX_VERBOSITY:  # the property setter drops TensorRT's bool
            raise TensorRTError(
                f"context {index} of engine {engine.spec.name!r}: nvtx_verbosity stayed "
                f"{context.nvtx_verbosity} after setting {RUN_NVTX_VERBOSITY}"
            )
        self._engine = engine
        self.index = index
        self.context: trt.IExecutionContext | None = context

    def _ctx(self) -> trt.IExecutionContext:
        if self.context is None:
            raise TensorRTError(f"execution context {self.index} used after close()")
        return self.context

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> None:
        self._engine.check_tensor(name)
        _check(
            self._ctx().set_input_shape(name, list(shape)),
            f"context {self.index}: set_input_shape({name!r}, {tuple(shape)}) (outside the selected profile?)",
        )

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        self._engine.check_tensor(name)  # an unknown name gives nbDims = -1, and len() a bare ValueError
        dims = self._ctx().get_tensor_shape(name)
        shape = tuple(int(dims[i]) for i in range(len(dims)))
        if any(d < 0 for d in shape):
            raise TensorRTError(
                f"context {self.index}: tensor {name!r} has unresolved shape {shape}: set the input shapes first"
            )
        return shape

    def set_tensor_address(self, name: str, address: int) -> None:
        self._engine.check_tensor(name)
        if address == 0:  # TensorRT would take it as "unbind" and fail the next enqueue
            raise TensorRTError(f"context {self.index}: set_tensor_address({name!r}) with a null address")
        _check(
            self._ctx().set_tensor_address(name, address),
            f"context {self.index}: set_tensor_address({name!r}, {address:#x}) (TensorRT needs 256-byte alignment)",
        )

    def set_input_consumed_event(self, event: int | None) -> None:
        _check(self._ctx().set_input_consumed_event(event or 0), f"context {self.index}: set_input_consumed_event")

    def set_optimization_profile(self, index: int, stream: Stream) -> None:
        profiles = self._engine.num_profiles
        if not 0 <= index < profiles:
            raise TensorRTError(
                f"context {self.index}: profile {index} does not exist (engine "
                f"{self._engine.spec.name!r} has {profiles})"
            )
        try:  # the binding raises RuntimeError on failure; it never returns False
            ok = self._ctx().set_optimization_profile_async(index, stream.ptr)
        except RuntimeError as exc:
            raise TensorRTError(
                f"context {self.index}: set_optimization_profile_async({index}) of engine "
                f"{self._engine.spec.name!r} failed: {exc}"
            ) from None
        _check(ok, f"context {self.index}: set_optimization_profile_async({index})")

    def enqueue(self, stream: Stream) -> None:
        _check(self._ctx().execute_async_v3(stream.ptr), f"context {self.index}: execute_async_v3")

    def close(self) -> None:
        self.context = None  # TensorRT frees the context when the last reference goes


class TensorRTEngine(Engine):
    backend = "tensorrt"

    def __init__(self, data: bytes, spec: EngineSpec, model_spec: Any) -> None:
        self.engine: trt.ICudaEngine = deserialize(data)
        self.spec = spec
        self.precision = spec.precision
        self.graph_variant = spec.graph_variant
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self._inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self._contexts = 0
        self._check_io(model_spec)

    def _check_io(self, model_spec: Any) -> None:
        """The engine's I/O names and data types are the graph variant's: the pipelines
        allocate and read buffers by them."""
        inputs, outputs = graph_io(model_spec, self.spec.graph_variant)
        expected = {**inputs, **outputs}
        found = set(self._inputs) | set(self._outputs)
        if found != set(expected):
            raise TensorRTError(f"engine {self.spec.name!r}: I/O tensors {sorted(found)}, expected {sorted(expected)}")
        for name, (dtype, _) in expected.items():
            actual = self.engine.get_tensor_dtype(name)
            if _NUMPY_DTYPES.get(actual) != dtype:
                raise TensorRTError(
                    f"engine {self.spec.name!r}: tensor {name!r} is {actual}, the pipelines need "
                    f"{dtype} (graph variant {self.spec.graph_variant!r})"
                )

    def check_tensor(self, name: str) -> None:
        if name not in self._inputs and name not in self._outputs:
            raise TensorRTError(
                f"engine {self.spec.name!r} has no tensor {name!r} (inputs {self._inputs}, outputs {self._outputs})"
            )

    @property
    def input_names(self) -> list[str]:
        return list(self._inputs)

    @property
    def output_names(self) -> list[str]:
        return list(self._outputs)

    def tensor_dtype(self, name: str) -> np.dtype[Any]:
        self.check_tensor(name)
        return _NUMPY_DTYPES[self.engine.get_tensor_dtype(name)]  # checked at load

    @property
    def num_profiles(self) -> int:
        return int(self.engine.num_optimization_profiles)

    def profile_batch_range(self, index: int) -> tuple[int, int]:
        if not 0 <= index < self.num_profiles:  # the binding returns nbDims -1 shapes, not an error
            raise TensorRTError(
                f"engine {self.spec.name!r}: profile {index} does not exist (it has {self.num_profiles})"
            )
        lo, _, hi = self.engine.get_tensor_profile_shape(self._inputs[0], index)
        return int(lo[0]), int(hi[0])

    def create_execution_context(self) -> TensorRTContext:
        self._contexts += 1
        return TensorRTContext(self, self._contexts - 1)

    def peak_working_bytes(self, contexts: int) -> int:
        # activation memory TensorRT allocates per execution context (weights not included)
        return int(self.engine.device_memory_size_v2) * contexts

    def close(self) -> None:
        self.engine = None  # type: ignore[assignment]
