"""A contract double of the part of the ``tensorrt`` module that the TensorRT backend uses.

TensorRT cannot be installed on our machines. This double lets the real
``trtbench.gpu.backends.tensorrt_backend`` code run, end to end, while enforcing the
contracts TensorRT documents for the calls it makes:

* booleans returned where TensorRT returns booleans; ``set_optimization_profile_async``
  raises ``RuntimeError`` (pyCore.cpp wraps it) instead;
* an optimization profile is selected before input shapes are set, and input shapes are
  cleared when it changes; a shape outside the profile's range is refused (False);
* output shapes are resolved only once the input shapes are set; an unknown name gives
  ``Dims`` with nbDims -1, whose ``len()`` raises ``ValueError``;
* every I/O address is bound and every input shape set before ``execute_async_v3``;
* ``nvtx_verbosity`` defaults to the build's profiling verbosity and cannot be raised
  above it (the property setter drops TensorRT's False);
* one CUDA graph per execution context: a context captured again with other shapes or
  addresses refuses the enqueue (and records the violation);
* the input-consumed event is recorded once the input has been read;
* the engine inspector resolves dynamic dimensions only when given a context whose input
  shapes are set; timing caches serialize and combine.

It computes the network with a pluggable ``compute``: ONNX Runtime on the CUDA test double
(CPU CI), or torch on the real stream (a GPU). It proves our calls and their order,
not TensorRT's kernels, its numbers or its fp16 error: it is a test double, never a
benchmark backend and never a saved figure.
"""

from __future__ import annotations

import enum
import hashlib
import json
import threading
import time
import types
from typing import Any

import numpy as np

VERSION = "10.13.3"  # the API the double follows (tensorrt-stubs 10.13, checked against 10.13.3's sources)


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


class BuilderFlag(enum.Enum):
    FP16 = 0
    TF32 = 1


class NetworkDefinitionCreationFlag(enum.IntEnum):
    STRONGLY_TYPED = 1


class PreviewFeature(enum.Enum):
    PROFILE_SHARING_0806 = 0  # deprecated in 10.x (always on), gone in 11.x


class Logger:
    WARNING = 2
    ERROR = 1

    def __init__(self, severity: int = 2) -> None:
        self.severity = severity
        self.errors: list[str] = []


ILogger = Logger

_ONNX_TYPES = {1: DataType.FLOAT, 10: DataType.HALF, 2: DataType.UINT8, 6: DataType.INT32, 7: DataType.INT64}
_NUMPY = {DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.UINT8: np.uint8, DataType.INT32: np.int32,
          DataType.INT64: np.int64}


class Dims(list):  # type: ignore[type-arg]
    """``trt.Dims``; ``Dims.unknown()`` is what TensorRT returns for a name it does not know."""

    unresolved = False

    @classmethod
    def unknown(cls) -> "Dims":
        dims = cls()
        dims.unresolved = True
        return dims

    def __len__(self) -> int:
        if self.unresolved:
            raise ValueError("nbDims is -1")  # what the binding's len() does on nbDims = -1
        return super().__len__()


# ---------------------------------------------------------------- build

class _Tensor:
    def __init__(self, name: str, dtype: DataType, shape: list[int]) -> None:
        self.name, self.dtype, self.shape = name, dtype, shape


class INetworkDefinition:
    def __init__(self, flags: int) -> None:
        self.strongly_typed = bool(flags & (1 << int(NetworkDefinitionCreationFlag.STRONGLY_TYPED)))
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
    def __init__(self, network: INetworkDefinition, logger: Logger) -> None:
        self.network = network
        self.errors: list[str] = []

    def parse(self, model: bytes, path: str = "") -> bool:
        import onnx

        try:
            proto = onnx.load_from_string(model)
        except Exception as exc:
            self.errors.append(f"cannot read the model: {exc}")
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

    def combine(self, other: "ITimingCache", ignore_mismatch: bool) -> bool:
        self.entries |= other.entries
        return True


class IBuilderConfig:
    def __init__(self) -> None:
        self.profiling_verbosity = ProfilingVerbosity.LAYER_NAMES_ONLY
        self.max_aux_streams = -1
        self.flags: set[BuilderFlag] = set()
        self.preview: set[PreviewFeature] = set()
        self.profiles: list[IOptimizationProfile] = []
        self.timing_cache: ITimingCache | None = None

    def set_flag(self, flag: BuilderFlag) -> None:
        self.flags.add(flag)

    def set_preview_feature(self, feature: PreviewFeature, enable: bool) -> None:
        self.preview.add(feature)

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
    def __init__(self, logger: Logger) -> None:
        self.logger = logger

    def create_network(self, flags: int = 0) -> INetworkDefinition:
        return INetworkDefinition(flags)

    def create_builder_config(self) -> IBuilderConfig:
        return IBuilderConfig()

    def create_optimization_profile(self) -> IOptimizationProfile:
        return IOptimizationProfile()

    def build_serialized_network(self, network: INetworkDefinition, config: IBuilderConfig) -> bytes | None:
        names = [t.name for t in network.inputs]
        if not config.profiles or any(set(p.shapes) != set(names) for p in config.profiles):
            return None  # TensorRT needs a profile covering every dynamic input
        fp16 = BuilderFlag.FP16 in config.flags or (network.strongly_typed and network.fp16_weights)
        desc = {
            "double": VERSION, "onnx_path": network.onnx_path, "onnx_sha256": network.onnx_sha256, "fp16": fp16,
            "verbosity": config.profiling_verbosity.name,
            "io": [(t.name, "INPUT", t.dtype.name, t.shape) for t in network.inputs]
            + [(t.name, "OUTPUT", t.dtype.name, t.shape) for t in network.outputs],
            "profiles": [{n: s for n, s in p.shapes.items()} for p in config.profiles],
        }
        if config.timing_cache is not None:  # what a build learns goes into the cache
            config.timing_cache.entries.add(f"{network.onnx_sha256[:12]}:{fp16}:{desc['profiles']}")
        return json.dumps(desc).encode()


# ---------------------------------------------------------------- run

class Runtime:
    def __init__(self, logger: Logger) -> None:
        self.logger = logger

    def deserialize_cuda_engine(self, data: bytes) -> "ICudaEngine | None":
        try:
            desc = json.loads(bytes(data))
        except ValueError:
            return None
        if not isinstance(desc, dict) or desc.get("double") != VERSION:
            return None
        return ICudaEngine(desc)


class ICudaEngine:
    compute: Any = None  # set by install(): how execute_async_v3 computes

    def __init__(self, desc: dict[str, Any]) -> None:
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
            raise RuntimeError(f"no profile {index} for tensor {name!r}")
        return [Dims(s) for s in self.desc["profiles"][index][name]]

    @property
    def device_memory_size_v2(self) -> int:
        return 1 << 20

    def create_execution_context(self) -> "IExecutionContext":
        return IExecutionContext(self)

    def create_engine_inspector(self) -> "IEngineInspector":
        return IEngineInspector(self)


class IEngineInspector:
    def __init__(self, engine: ICudaEngine) -> None:
        self.engine = engine
        self.execution_context: IExecutionContext | None = None

    def get_engine_information(self, fmt: LayerInformationFormat) -> str:
        ctx = self.execution_context
        bindings = []
        for name in self.engine.names:
            shape = list(ctx.get_tensor_shape(name)) if ctx is not None and ctx.shapes_resolved() else \
                self.engine.io[name][2]
            bindings.append({"Name": name, "Dimensions": shape,
                             "Format/Datatype": self.engine.io[name][1].name if ctx is not None else None})
        return json.dumps({"Layers": ["(double)"], "Bindings": bindings})


class IExecutionContext:
    def __init__(self, engine: ICudaEngine) -> None:
        self.engine = engine
        self._nvtx = engine.build_verbosity
        self.active_optimization_profile = 0
        self.input_shapes: dict[str, list[int]] = {}
        self.addresses: dict[str, int] = {}
        self.consumed_event = 0
        self.captured_key: Any = None
        self.violations: list[str] = []
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
        if not 0 <= index < self.engine.num_optimization_profiles:
            raise RuntimeError("Error in set optimization profile async.")
        self.active_optimization_profile = index
        self.input_shapes.clear()  # shapes belong to a profile: set them again
        return True

    def set_input_shape(self, name: str, shape: Any) -> bool:
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

    def set_tensor_address(self, name: str, address: int) -> bool:
        if name not in self.engine.io:
            return False
        self.addresses[name] = int(address)
        return True

    def set_input_consumed_event(self, event: int) -> bool:
        self.consumed_event = int(event)
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        if not self.shapes_resolved() or set(self.addresses) != set(self.engine.io):
            return False  # TensorRT logs "...address not set" / "shape not specified" and returns False
        compute = ICudaEngine.compute
        if compute.is_capturing(stream_handle):
            key = (json.dumps(self.input_shapes, sort_keys=True), tuple(sorted(self.addresses.items())))
            if self.captured_key is not None and self.captured_key != key:
                self.violations.append("captured again with other shapes or addresses: one graph per context")
                return False
            self.captured_key = key
        self.enqueues += 1
        compute.enqueue(self, stream_handle)
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

    def is_capturing(self, stream: int) -> bool:
        return self.runtime.streams.get(int(stream)) is not None

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
            for (name, value) in zip([o.name for o in session.get_outputs()], session.run(None, feeds)):
                np.copyto(host_array(io[name][1], *io[name][0]), value)

        assert self.runtime.run_on(int(stream), run) == 0


class TorchOnGpu:
    """The H100: the network in torch (the same graph variant, fp16 where the engine is),
    run eagerly on the stream it is given, reading the bound input and writing the bound
    outputs in place. Each context allocates from a memory pool of its own: the first
    (normal) enqueue fills it, so that an enqueue inside our raw stream capture finds its
    blocks cached and needs no cudaMalloc (which would end the capture), and the captured
    graph's memory is never handed to another context."""

    def __init__(self, modules: dict[str, Any]) -> None:
        self.modules = modules  # ONNX sha256 -> callable(fp16) -> the graph module on the GPU
        self._made: dict[tuple[str, bool], Any] = {}
        self._lock = threading.Lock()

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
            holder = types.SimpleNamespace(__cuda_array_interface__=cuda_array_interface(ctx.addresses[name], shape, dtype))
            return torch.as_tensor(holder, device="cuda")

        module = self._module(ctx)
        if "pool" not in ctx.cache:
            ctx.cache["pool"] = torch.cuda.MemPool()
        inputs = [n for n in ctx.engine.names if ctx.engine.io[n][0] == TensorIOMode.INPUT]
        outputs = [n for n in ctx.engine.names if ctx.engine.io[n][0] == TensorIOMode.OUTPUT]
        with torch.cuda.use_mem_pool(ctx.cache["pool"]), torch.cuda.stream(torch.cuda.ExternalStream(stream)), \
                torch.inference_mode():
            x = module.prepare(view(inputs[0]))  # a copy of the input: after it, the input is free
            if ctx.consumed_event:
                cuda_call("cudaEventRecord", cudart.cudaEventRecord(cudart.cudaEvent_t(ctx.consumed_event),
                                                                    cudart.cudaStream_t(stream)))
            result = module.head(x)
            for name, value in zip(outputs, result if isinstance(result, tuple) else (result,)):
                view(name).copy_(value)


def install(compute: Any) -> types.ModuleType:
    """A module object standing for ``tensorrt``, computing with ``compute``."""
    ICudaEngine.compute = compute
    module = types.ModuleType("tensorrt")
    module.__version__ = VERSION
    module.__is_contract_double__ = True
    for obj in (DataType, TensorIOMode, ProfilingVerbosity, LayerInformationFormat, BuilderFlag,
                NetworkDefinitionCreationFlag, PreviewFeature, Logger, Dims, Builder, OnnxParser, Runtime,
                ICudaEngine, IExecutionContext, IEngineInspector, INetworkDefinition, IBuilderConfig,
                IOptimizationProfile, ITimingCache):
        setattr(module, obj.__name__, obj)
    module.ILogger = ILogger
    return module
