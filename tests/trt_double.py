"""A contract double of the part of the ``tensorrt`` module that the TensorRT backend uses.

TensorRT cannot be installed on our machines. This double lets the real
``trtbench.gpu.backends.tensorrt_backend`` code run, end to end, while enforcing the
contracts TensorRT documents for the calls it makes, in one of two modes, each with the
API of its release (``install(compute, "10.x")`` or ``"11.x"``):

* 10.x (10.13): ``BuilderFlag.FP16`` exists (deprecated since 10.12) and makes a weakly
  typed network fp16, but a strongly typed network built with it is refused
  (NVIDIA/TensorRT#4253); ``STRONGLY_TYPED`` is bit 1; the members 11.0 removed are there.
* 11.x (11.1): no ``BuilderFlag.FP16`` (nor the other weak-typing flags), every network is
  strongly typed, ``STRONGLY_TYPED`` is bit 0 and ignored; ``device_memory_size``,
  ``create_execution_context_without_device_memory``, ``get_device_memory_size_for_profile``,
  ``all_shape_inputs_specified``, ``platform_has_fast_fp16`` and
  ``PreviewFeature.PROFILE_SHARING_0806`` are gone (AttributeError, as in the bindings).

In both modes (sources: NvInferRuntime.h, NvInfer.h, pyCore.cpp, pyFoundationalTypes.cpp
and onnx-tensorrt's ModelImporter.cpp):

* the parser refuses a UINT8 tensor that a node makes and that is not a network output;
* booleans are returned where TensorRT returns booleans; ``set_optimization_profile_async``
  raises ``RuntimeError`` (pyCore.cpp wraps it) instead;
* an optimization profile is selected before input shapes are set, and input shapes are
  cleared when it changes; a shape outside the profile's range is refused (False);
* output shapes are resolved only once the input shapes are set; an unknown name gives
  ``Dims`` with nbDims -1 (``len()`` raises ValueError, indexing IndexError), and so does
  ``get_tensor_profile_shape`` for a profile that does not exist;
* a tensor address must be 256-byte aligned (else False); 0 resets it; every input must
  have a non-null address and every output an address before ``execute_async_v3``;
* ``execute_async_v3`` takes a stream handle (an int: pybind11 refuses other objects with
  TypeError), and a handle that is not a live stream fails the enqueue (False);
* one logger per process: a builder or runtime given another logger than the first one
  gets TensorRT's warning in ``log`` (NVIDIA/TensorRT#1475);
* ``nvtx_verbosity`` defaults to the build's profiling verbosity and cannot be raised
  above it (the property setter drops TensorRT's False);
* a context may be captured into CUDA graphs again with other shapes or addresses, as
  TensorRT allows (each capture is counted);
* the input-consumed event is recorded once the input has been read;
* the engine inspector resolves dynamic dimensions only when given a context whose input
  shapes are set; timing caches serialize and combine; an engine deserializes only in the
  release that built it.

It computes the network with a pluggable ``compute``: ONNX Runtime on the CUDA test double
(CPU CI), or torch on the real stream (a GPU). It proves our calls and their order,
not TensorRT's kernels, its numbers or its fp16 error: it is a test double, never a
benchmark backend and never a saved figure.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import importlib
import json
import operator
import sys
import threading
import time
import types
from collections.abc import Iterator
from typing import Any

import numpy as np

MODES = {"10.x": "10.13.3", "11.x": "11.1.0"}  # mode -> the release whose API it follows
ALIGNMENT = 256  # NvInferRuntime.h, setTensorAddress: "The pointer must have at least 256-byte alignment."
LOGGER_WARNING = (
    "The logger passed into {what} differs from one already provided for an existing builder, "
    "runtime, or refitter. TensorRT maintains only a single logger pointer at any given time"
)
STRONGLY_TYPED_FP16 = (
    "IBuilder::buildSerializedNetwork: Error Code 3: API Usage Error (Parameter check failed, "
    "condition: !config.getFlag(BuilderFlag::kFP16). )"
)
UINT8_INTERMEDIATE = "TensorRT does not support UINT8 types for intermediate tensors!"


class DataType(enum.Enum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5
    FP8 = 6
    BF16 = 7
    INT64 = 8


class TensorIOMode(enum.Enum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class ProfilingVerbosity(enum.Enum):
    LAYER_NAMES_ONLY = 0
    NONE = 1
    DETAILED = 2


_VERBOSITY_RANK = {ProfilingVerbosity.NONE: 0, ProfilingVerbosity.LAYER_NAMES_ONLY: 1, ProfilingVerbosity.DETAILED: 2}


class LayerInformationFormat(enum.Enum):
    ONELINE = 0
    JSON = 1


# Per release, as the bindings list them (pyCore.cpp, release/10.13 and release/11.1), the
# values the backend could touch.
class BuilderFlag10(enum.Enum):
    FP16 = 0  # deprecated in 10.12: "Superseded by strong typing"
    BF16 = 1
    INT8 = 2
    TF32 = 7
    OBEY_PRECISION_CONSTRAINTS = 11
    PREFER_PRECISION_CONSTRAINTS = 12


class BuilderFlag11(enum.Enum):
    TF32 = 7


class NetworkDefinitionCreationFlag10(enum.IntEnum):
    EXPLICIT_BATCH = 0  # deprecated, ignored
    STRONGLY_TYPED = 1


class NetworkDefinitionCreationFlag11(enum.IntEnum):
    STRONGLY_TYPED = 0  # deprecated in 11.0: "Strongly typed mode is always enabled ... ignored"
    PREFER_JIT_PYTHON_PLUGINS = 1
    PREFER_AOT_PYTHON_PLUGINS = 2


class PreviewFeature10(enum.Enum):
    PROFILE_SHARING_0806 = 0  # deprecated in 10.x (always on), gone in 11.x
    ALIASED_PLUGIN_IO_10_03 = 1


class PreviewFeature11(enum.Enum):
    ALIASED_PLUGIN_IO_10_03 = 1


class ILogger:
    WARNING = 2
    ERROR = 1


class Logger(ILogger):
    def __init__(self, severity: int = 2) -> None:
        self.severity = severity


_ONNX_TYPES = {1: DataType.FLOAT, 10: DataType.HALF, 2: DataType.UINT8, 6: DataType.INT32, 7: DataType.INT64}
_NUMPY = {
    DataType.FLOAT: np.float32,
    DataType.HALF: np.float16,
    DataType.UINT8: np.uint8,
    DataType.INT32: np.int32,
    DataType.INT64: np.int64,
}


def _handle(value: Any, call: str, param: str) -> int:
    """A pointer argument as pybind11 takes it (``size_t``): an int, or an object with
    ``__index__``; anything else is refused with TypeError before TensorRT sees it."""
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(
            f"{call}(): incompatible function arguments. The following argument types are supported:\n"
            f"    1. ({param}: int) -> bool\n\nInvoked with: {value!r}"
        ) from None


class Api:
    """One installed release: its version, compute, first logger and log (what TensorRT
    would print)."""

    def __init__(self, mode: str, compute: Any) -> None:
        self.mode = mode
        self.version = MODES[mode]
        self.major = int(self.version.split(".")[0])
        self.compute = compute
        self.logger: ILogger | None = None
        self.log: list[tuple[str, str]] = []
        self.BuilderFlag = BuilderFlag10 if self.major == 10 else BuilderFlag11
        self.NetworkDefinitionCreationFlag = (
            NetworkDefinitionCreationFlag10 if self.major == 10 else NetworkDefinitionCreationFlag11
        )
        self.PreviewFeature = PreviewFeature10 if self.major == 10 else PreviewFeature11

    def error(self, message: str) -> None:
        self.log.append(("ERROR", message))

    def use_logger(self, logger: Any, what: str) -> None:
        if not isinstance(logger, ILogger):
            raise TypeError(f"{what}(): incompatible function arguments: a tensorrt.ILogger is needed, got {logger!r}")
        if self.logger is None:
            self.logger = logger
        elif logger is not self.logger:
            self.log.append(("WARNING", LOGGER_WARNING.format(what=what)))


class Dims(list):  # type: ignore[type-arg]
    """``trt.Dims``; ``Dims.unknown()`` is what TensorRT returns for a name it does not know
    (nbDims -1: ``__len__`` returns -1, so ``len()`` raises ValueError; indexing raises IndexError)."""

    unresolved = False

    @classmethod
    def unknown(cls) -> Dims:
        dims = cls()
        dims.unresolved = True
        return dims

    def __len__(self) -> int:
        if self.unresolved:
            raise ValueError("__len__() should return >= 0")  # the binding's __len__ returns nbDims = -1
        return super().__len__()

    def __getitem__(self, index: Any) -> Any:
        if self.unresolved:
            raise IndexError("Out of bounds")
        return super().__getitem__(index)


# ---------------------------------------------------------------- build


class _Tensor:
    def __init__(self, name: str, dtype: DataType, shape: list[int]) -> None:
        self.name, self.dtype, self.shape = name, dtype, shape


class INetworkDefinition:
    def __init__(self, api: Api, strongly_typed: bool) -> None:
        self.api = api
        self.strongly_typed = strongly_typed
        self.inputs: list[_Tensor] = []
        self.outputs: list[_Tensor] = []
        self.onnx_path = ""
        self.onnx_sha256 = ""
        self.fp16_weights = False

    def get_input(self, index: int) -> _Tensor:
        return self.inputs[index]

    @property
    def num_inputs(self) -> int:
        return len(self.inputs)


class OnnxParser:
    def __init__(self, network: INetworkDefinition, logger: ILogger) -> None:
        self.network = network
        self.errors: list[str] = []

    def parse(self, model: bytes, path: str = "") -> bool:
        import onnx

        try:
            proto = onnx.load_from_string(model)
        except Exception as exc:
            self.errors.append(f"cannot read the model: {exc}")
            return False
        self.errors += _uint8_intermediates(proto)
        if self.errors:
            return False

        def tensors(values: Any) -> list[_Tensor]:
            out = []
            for v in values:
                t = v.type.tensor_type
                dims = [-1 if d.dim_param else int(d.dim_value) for d in t.shape.dim]
                out.append(_Tensor(v.name, _ONNX_TYPES[t.elem_type], dims))
            return out

        self.network.inputs, self.network.outputs = tensors(proto.graph.input), tensors(proto.graph.output)
        self.network.onnx_path, self.network.onnx_sha256 = path, hashlib.sha256(model).hexdigest()
        self.network.fp16_weights = any(i.data_type == 10 for i in proto.graph.initializer)
        return True

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, index: int) -> str:
        return self.errors[index]


def _uint8_intermediates(proto: Any) -> list[str]:
    """What onnx-tensorrt's importer refuses (ModelImporter.cpp, legalUINT8): a node whose
    UINT8 output is not a graph output."""
    import onnx

    graph = onnx.shape_inference.infer_shapes(proto).graph
    uint8 = {v.name for v in graph.value_info if v.type.tensor_type.elem_type == onnx.TensorProto.UINT8}
    outputs = {o.name for o in graph.output}
    return [
        f"In node {node.name} ({node.op_type}): UNSUPPORTED_NODE: Assertion failed: legalUINT8 && "
        f'"{UINT8_INTERMEDIATE}"'
        for node in graph.node
        if any(name in uint8 and name not in outputs for name in node.output)
    ]


class IOptimizationProfile:
    def __init__(self) -> None:
        self.shapes: dict[str, tuple[list[int], list[int], list[int]]] = {}

    def set_shape(self, name: str, lo: Any, opt: Any, hi: Any) -> None:
        lo, opt, hi = list(lo), list(opt), list(hi)
        if not (len(lo) == len(opt) == len(hi) and all(a <= b <= c for a, b, c in zip(lo, opt, hi))):
            raise ValueError(f"profile shapes of {name!r} are not min <= opt <= max: {lo} {opt} {hi}")
        self.shapes[name] = (lo, opt, hi)


class ITimingCache:
    def __init__(self, entries: set[str]) -> None:
        self.entries = entries

    def serialize(self) -> bytes:
        return json.dumps(sorted(self.entries)).encode()

    def combine(self, other: ITimingCache, ignore_mismatch: bool) -> bool:
        self.entries |= other.entries
        return True


class IBuilderConfig:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.profiling_verbosity = ProfilingVerbosity.LAYER_NAMES_ONLY
        self.max_aux_streams = -1
        self.flags: set[Any] = set()
        self.preview: set[Any] = set()
        self.profiles: list[IOptimizationProfile] = []
        self.timing_cache: ITimingCache | None = None

    def set_flag(self, flag: Any) -> None:
        if not isinstance(flag, self.api.BuilderFlag):
            raise TypeError(
                f"set_flag(): incompatible function arguments: {flag!r} is no BuilderFlag of {self.api.version}"
            )
        self.flags.add(flag.name)

    def set_preview_feature(self, feature: Any, enable: bool) -> None:
        if not isinstance(feature, self.api.PreviewFeature):
            raise TypeError(f"set_preview_feature(): {feature!r} is no PreviewFeature of {self.api.version}")
        self.preview.add(feature.name)

    def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
        if not profile.shapes:
            return -1
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def create_timing_cache(self, serialized: bytes) -> ITimingCache:
        return ITimingCache(set(json.loads(serialized)) if serialized else set())

    def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
        self.timing_cache = cache
        return True


class Builder:
    api: Api  # set per install

    def __init__(self, logger: ILogger) -> None:
        self.api.use_logger(logger, "createInferBuilder")
        self.logger = logger

    def create_network(self, flags: int = 0) -> INetworkDefinition:
        if self.api.major >= 11:
            return INetworkDefinition(self.api, True)  # every 11.x network is strongly typed; the flag is ignored
        bit = 1 << int(NetworkDefinitionCreationFlag10.STRONGLY_TYPED)
        return INetworkDefinition(self.api, bool(flags & bit))

    def create_builder_config(self) -> IBuilderConfig:
        return IBuilderConfig(self.api)

    def create_optimization_profile(self) -> IOptimizationProfile:
        return IOptimizationProfile()

    def build_serialized_network(self, network: INetworkDefinition, config: IBuilderConfig) -> bytes | None:
        names = [t.name for t in network.inputs]
        if not config.profiles or any(set(p.shapes) != set(names) for p in config.profiles):
            self.api.error("a profile must cover every dynamic input")
            return None
        if network.strongly_typed and "FP16" in config.flags:
            self.api.error(STRONGLY_TYPED_FP16)  # 10.x (NVIDIA/TensorRT#4253); 11.x has no such flag
            return None
        fp16 = "FP16" in config.flags or (network.strongly_typed and network.fp16_weights)
        desc = {
            "double": self.api.version,
            "onnx_path": network.onnx_path,
            "onnx_sha256": network.onnx_sha256,
            "fp16": fp16,
            "strongly_typed": network.strongly_typed,
            "flags": sorted(config.flags),
            "verbosity": config.profiling_verbosity.name,
            "io": [(t.name, "INPUT", t.dtype.name, t.shape) for t in network.inputs]
            + [(t.name, "OUTPUT", t.dtype.name, t.shape) for t in network.outputs],
            "profiles": [{n: s for n, s in p.shapes.items()} for p in config.profiles],
        }
        if config.timing_cache is not None:  # what a build learns goes into the cache
            config.timing_cache.entries.add(f"{network.onnx_sha256[:12]}:{fp16}:{desc['profiles']}")
        return json.dumps(desc).encode()


class Builder10(Builder):
    @property
    def platform_has_fast_fp16(self) -> bool:  # removed in 11.0
        return True


# ---------------------------------------------------------------- run


class Runtime:
    api: Api  # set per install

    def __init__(self, logger: ILogger) -> None:
        self.api.use_logger(logger, "createInferRuntime")
        self.logger = logger

    def deserialize_cuda_engine(self, data: bytes) -> ICudaEngine | None:
        try:
            desc = json.loads(bytes(data))
        except ValueError:
            return None
        if not isinstance(desc, dict) or desc.get("double") != self.api.version:
            self.api.error("Serialization assertion failed: the engine was built by another TensorRT")
            return None
        return (ICudaEngine10 if self.api.major == 10 else ICudaEngine)(self.api, desc)


class ICudaEngine:
    def __init__(self, api: Api, desc: dict[str, Any]) -> None:
        self.api = api
        self.desc = desc
        self.io = {name: (TensorIOMode[mode], DataType[dtype], shape) for name, mode, dtype, shape in desc["io"]}
        self.names = [name for name, *_ in desc["io"]]
        self.build_verbosity = ProfilingVerbosity[desc["verbosity"]]

    @property
    def num_io_tensors(self) -> int:
        return len(self.names)

    def get_tensor_name(self, index: int) -> str:
        return self.names[index]

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        return self.io[name][0] if name in self.io else TensorIOMode.NONE

    def get_tensor_dtype(self, name: str) -> DataType:
        return self.io[name][1] if name in self.io else DataType.FLOAT  # what the binding returns for an unknown name

    @property
    def num_optimization_profiles(self) -> int:
        return len(self.desc["profiles"])

    def get_tensor_profile_shape(self, name: str, index: int) -> list[Dims]:
        if not 0 <= index < self.num_optimization_profiles or name not in self.desc["profiles"][index]:
            return [Dims.unknown() for _ in range(3)]  # getProfileShape: "return Dims{-1, {}}"
        return [Dims(s) for s in self.desc["profiles"][index][name]]

    @property
    def device_memory_size_v2(self) -> int:
        return 1 << 20

    def create_execution_context(self) -> IExecutionContext:
        return (IExecutionContext10 if self.api.major == 10 else IExecutionContext)(self)

    def create_engine_inspector(self) -> IEngineInspector:
        return IEngineInspector(self)


class ICudaEngine10(ICudaEngine):
    """What 10.x has (deprecated) and 11.0 removed."""

    @property
    def device_memory_size(self) -> int:
        return self.device_memory_size_v2

    def get_device_memory_size_for_profile(self, index: int) -> int:
        return self.device_memory_size_v2

    def create_execution_context_without_device_memory(self) -> IExecutionContext:
        return self.create_execution_context()


class IEngineInspector:
    def __init__(self, engine: ICudaEngine) -> None:
        self.engine = engine
        self.execution_context: IExecutionContext | None = None

    def get_engine_information(self, fmt: LayerInformationFormat) -> str:
        ctx = self.execution_context
        bindings = []
        for name in self.engine.names:
            shape = (
                list(ctx.get_tensor_shape(name))
                if ctx is not None and ctx.shapes_resolved()
                else self.engine.io[name][2]
            )
            bindings.append(
                {
                    "Name": name,
                    "Dimensions": shape,
                    "Format/Datatype": self.engine.io[name][1].name if ctx is not None else None,
                }
            )
        return json.dumps({"Layers": ["(double)"], "Bindings": bindings})


class IExecutionContext:
    def __init__(self, engine: ICudaEngine) -> None:
        self.engine = engine
        self.api = engine.api
        self._nvtx = engine.build_verbosity
        self.active_optimization_profile = 0
        self.input_shapes: dict[str, list[int]] = {}
        self.addresses: dict[str, int] = {}
        self.consumed_event = 0
        self.calls: list[str] = []  # the binding calls, in order (set_input_shape, set_tensor_address, ...)
        self.captures = 0
        self.enqueues = 0
        self.cache: dict[Any, Any] = {}  # for the compute

    @property
    def nvtx_verbosity(self) -> ProfilingVerbosity:
        return self._nvtx

    @nvtx_verbosity.setter
    def nvtx_verbosity(self, value: ProfilingVerbosity) -> None:
        if _VERBOSITY_RANK[value] <= _VERBOSITY_RANK[self.engine.build_verbosity]:
            self._nvtx = value  # a raise above the build's level is refused, and the binding drops the False

    def set_optimization_profile_async(self, index: int, stream: int) -> bool:
        _handle(stream, "set_optimization_profile_async", "stream_handle")
        if not 0 <= index < self.engine.num_optimization_profiles:
            raise RuntimeError("Error in set optimization profile async.")
        self.active_optimization_profile = index
        self.input_shapes.clear()  # shapes belong to a profile: set them again
        return True

    def set_input_shape(self, name: str, shape: Any) -> bool:
        self.calls.append("set_input_shape")
        mode, _, declared = self.engine.io.get(name, (TensorIOMode.NONE, None, []))
        shape = list(shape)
        if mode != TensorIOMode.INPUT or len(shape) != len(declared):
            return False
        lo, _, hi = self.engine.desc["profiles"][self.active_optimization_profile][name]
        if any(d < a or d > b for d, a, b in zip(shape, lo, hi)):
            return False  # "does not satisfy any optimization profile"
        self.input_shapes[name] = shape
        return True

    def shapes_resolved(self) -> bool:
        return all(n in self.input_shapes for n, (m, _, _) in self.engine.io.items() if m == TensorIOMode.INPUT)

    def get_tensor_shape(self, name: str) -> Dims:
        if name not in self.engine.io:
            return Dims.unknown()
        mode, _, declared = self.engine.io[name]
        if mode == TensorIOMode.INPUT:
            return Dims(self.input_shapes.get(name, declared))
        if not self.shapes_resolved():
            return Dims(declared)  # -1 where dynamic
        batch = next(iter(self.input_shapes.values()))[0]
        return Dims([batch if d == -1 else d for d in declared])

    def set_tensor_address(self, name: str, address: Any) -> bool:
        self.calls.append("set_tensor_address")
        address = _handle(address, "set_tensor_address", "memory")
        if name not in self.engine.io:
            self.api.error(f"setTensorAddress: {name!r} is not an input or output tensor")
            return False
        if address == 0:
            self.addresses.pop(name, None)  # "Pass data=nullptr to reset to the default state."
            return True
        if address % ALIGNMENT:
            self.api.error(f"setTensorAddress: the address of {name!r} is not {ALIGNMENT}-byte aligned")
            return False
        self.addresses[name] = address
        return True

    def set_input_consumed_event(self, event: Any) -> bool:
        self.calls.append("set_input_consumed_event")
        self.consumed_event = _handle(event, "set_input_consumed_event", "event")
        return True

    def execute_async_v3(self, stream_handle: Any) -> bool:
        stream = _handle(stream_handle, "execute_async_v3", "stream_handle")
        compute = self.api.compute
        if not compute.is_stream(stream):
            self.api.error(f"enqueueV3: {stream:#x} is not a CUDA stream (cudaErrorInvalidResourceHandle)")
            return False
        if stream == 0:
            self.api.log.append(("WARNING", "Using default stream in enqueueV3() may lead to performance issues"))
        missing = [n for n in self.engine.names if n not in self.addresses] + [
            n for n, (m, _, _) in self.engine.io.items() if m == TensorIOMode.INPUT and n not in self.input_shapes
        ]
        if missing:  # "each input must have a non-null address and each output a non-null address"
            self.api.error(f"enqueueV3: address or shape not set for {missing}")
            return False
        if compute.is_capturing(stream):
            self.captures += 1
        self.enqueues += 1
        compute.enqueue(self, stream)
        return True


class IExecutionContext10(IExecutionContext):
    @property
    def all_shape_inputs_specified(self) -> bool:  # removed in 11.0
        return True


# ---------------------------------------------------------------- compute


def _sample(ctx: IExecutionContext, name: str) -> tuple[tuple[int, ...], Any]:
    shape = tuple(ctx.get_tensor_shape(name))
    return shape, _NUMPY[ctx.engine.io[name][1]]


class OrtOnFakeCuda:
    """CPU CI: ONNX Runtime on the engine's ONNX file, through the CUDA test double's streams."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.sessions: dict[str, Any] = {}

    def is_stream(self, stream: int) -> bool:
        return stream == 0 or stream in self.runtime.streams

    def is_capturing(self, stream: int) -> bool:
        return self.runtime.streams.get(stream) is not None

    def enqueue(self, ctx: IExecutionContext, stream: int) -> None:
        import onnxruntime as ort

        from tests.fake_cuda import host_array

        path = ctx.engine.desc["onnx_path"]
        if path not in self.sessions:
            self.sessions[path] = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        session = self.sessions[path]
        io = {n: (_sample(ctx, n), ctx.addresses[n]) for n in ctx.engine.names}
        inputs = [n for n in ctx.engine.names if ctx.engine.io[n][0] == TensorIOMode.INPUT]
        consumed = ctx.consumed_event

        def run() -> None:
            feeds = {n: host_array(io[n][1], *io[n][0]).copy() for n in inputs}
            if consumed:
                self.runtime.events[consumed] = time.perf_counter()
            for name, value in zip([o.name for o in session.get_outputs()], session.run(None, feeds)):
                np.copyto(host_array(io[name][1], *io[name][0]), value)

        if stream == 0:  # the legacy default stream: synchronous here
            run()
            return
        assert self.runtime.run_on(stream, run) == 0


class TorchOnGpu:
    """A GPU: the network in torch (the same graph variant, fp16 where the engine is),
    run eagerly on the stream it is given, reading the bound input and writing the bound
    outputs in place. Each context allocates from a memory pool of its own: the first
    (normal) enqueue fills it, so that an enqueue inside our raw stream capture finds its
    blocks cached and needs no cudaMalloc (which would end the capture), and the captured
    graph's memory is never handed to another context."""

    def __init__(self, modules: dict[str, Any]) -> None:
        self.modules = modules  # ONNX sha256 -> callable(fp16) -> the graph module on the GPU
        self._made: dict[tuple[str, bool], Any] = {}
        self._lock = threading.Lock()

    def is_stream(self, stream: int) -> bool:
        from trtbench.gpu.cuda import live_stream_handles

        return stream == 0 or stream in live_stream_handles()  # a raw handle cannot be probed safely

    def is_capturing(self, stream: int) -> bool:
        from cuda.bindings import runtime as cudart

        from trtbench.gpu.cuda import cuda_call

        status = cuda_call("cudaStreamIsCapturing", cudart.cudaStreamIsCapturing(cudart.cudaStream_t(stream)))
        return status != cudart.cudaStreamCaptureStatus.cudaStreamCaptureStatusNone

    def _module(self, ctx: IExecutionContext) -> Any:
        key = (ctx.engine.desc["onnx_sha256"], bool(ctx.engine.desc["fp16"]))
        with self._lock:
            if key not in self._made:
                self._made[key] = self.modules[key[0]](key[1])
            return self._made[key]

    def enqueue(self, ctx: IExecutionContext, stream: int) -> None:
        import torch
        from cuda.bindings import runtime as cudart

        from trtbench.gpu.cuda import cuda_array_interface, cuda_call

        def view(name: str) -> Any:
            shape, dtype = _sample(ctx, name)
            holder = types.SimpleNamespace(
                __cuda_array_interface__=cuda_array_interface(ctx.addresses[name], shape, dtype)
            )
            return torch.as_tensor(holder, device="cuda")

        module = self._module(ctx)
        if "pool" not in ctx.cache:
            ctx.cache["pool"] = torch.cuda.MemPool()
        inputs = [n for n in ctx.engine.names if ctx.engine.io[n][0] == TensorIOMode.INPUT]
        outputs = [n for n in ctx.engine.names if ctx.engine.io[n][0] == TensorIOMode.OUTPUT]
        with (
            torch.cuda.use_mem_pool(ctx.cache["pool"]),
            torch.cuda.stream(torch.cuda.ExternalStream(stream)),
            torch.inference_mode(),
        ):
            x = module.prepare(view(inputs[0]))  # a copy of the input: after it, the input is free
            if ctx.consumed_event:
                cuda_call(
                    "cudaEventRecord",
                    cudart.cudaEventRecord(cudart.cudaEvent_t(ctx.consumed_event), cudart.cudaStream_t(stream)),
                )
            result = module.head(x)
            for name, value in zip(outputs, result if isinstance(result, tuple) else (result,)):
                view(name).copy_(value)


def install(compute: Any, mode: str = "10.x") -> types.ModuleType:
    """A module object standing for ``tensorrt`` of one release (``MODES``), computing with ``compute``."""
    api = Api(mode, compute)
    module = types.ModuleType("tensorrt")
    module.__version__ = api.version
    module.__is_contract_double__ = True
    module.api = api  # the double's own state (log, first logger): not part of tensorrt
    for obj in (
        DataType,
        TensorIOMode,
        ProfilingVerbosity,
        LayerInformationFormat,
        ILogger,
        Logger,
        Dims,
        OnnxParser,
        ICudaEngine,
        IExecutionContext,
        IEngineInspector,
        INetworkDefinition,
        IBuilderConfig,
        IOptimizationProfile,
        ITimingCache,
    ):
        setattr(module, obj.__name__, obj)
    module.BuilderFlag = api.BuilderFlag
    module.NetworkDefinitionCreationFlag = api.NetworkDefinitionCreationFlag
    module.PreviewFeature = api.PreviewFeature
    module.Builder = type("Builder", (Builder10 if api.major == 10 else Builder,), {"api": api})
    module.Runtime = type("Runtime", (Runtime,), {"api": api})
    return module


@contextlib.contextmanager
def backend_on(compute: Any, mode: str = "10.x") -> Iterator[Any]:
    """``trtbench.gpu.backends.tensorrt_backend`` imported against the double of ``mode``, then forgotten."""
    name = "trtbench.gpu.backends.tensorrt_backend"
    saved = {k: sys.modules.get(k) for k in ("tensorrt", name)}
    sys.modules["tensorrt"] = install(compute, mode)
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
