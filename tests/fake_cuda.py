"""A CPU stand-in for the part of ``cuda.bindings.runtime`` that ``trtbench.gpu.cuda`` calls,
and a CPU engine (ONNX Runtime) behind the backend interface: a test double, so that every
approach's pipeline logic (buffers, slots, events, graphs, threads, checks, release) runs
in CPU CI. Never a backend, never a figure.

Work runs synchronously at enqueue time, in host memory (``ctypes`` buffers stand for
device and pinned memory), so it proves the calls, their arguments, their order within a
thread and the release of every handle, not concurrency or speed. During a stream capture
operations are recorded instead, and a graph launch replays them, as CUDA does; a graph
launch into a capturing stream invalidates the capture (measured on the H100).
"""

from __future__ import annotations

import ctypes
import enum
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np


class cudaError_t(enum.IntEnum):  # noqa: N801 - the bindings' names
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorMemoryAllocation = 2
    cudaErrorInsufficientDriver = 35
    cudaErrorInvalidResourceHandle = 400
    cudaErrorNotReady = 600
    cudaErrorStreamCaptureUnsupported = 900
    cudaErrorStreamCaptureInvalidated = 901


class cudaMemcpyKind(enum.IntEnum):  # noqa: N801
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2
    cudaMemcpyDeviceToDevice = 3


class cudaStreamCaptureMode(enum.IntEnum):  # noqa: N801
    cudaStreamCaptureModeGlobal = 0
    cudaStreamCaptureModeThreadLocal = 1
    cudaStreamCaptureModeRelaxed = 2


OK = cudaError_t.cudaSuccess
ALIGNMENT = 256  # cudaMalloc's alignment


class _Props:
    name = b"Fake CPU device (tests)"
    major, minor = 0, 0
    totalGlobalMem = 1 << 34


class FakeRuntime:
    """The runtime functions, with a ledger of live handles (for leak checks)."""

    cudaError_t = cudaError_t
    cudaMemcpyKind = cudaMemcpyKind
    cudaStreamCaptureMode = cudaStreamCaptureMode
    cudaStreamNonBlocking = 1
    cudaEventDefault = 0
    cudaEventDisableTiming = 2
    cudaHostAllocDefault = 0

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.memory: dict[int, Any] = {}  # address -> ctypes buffer (device and pinned)
        self.sizes: dict[int, int] = {}  # address -> bytes usable from it
        self.pinned: set[int] = set()
        self.streams: dict[int, list[Callable[[], None]] | None] = {}  # handle -> capture list, or None
        self.events: dict[int, float] = {}  # handle -> time recorded (nan: never)
        self.graphs: dict[int, list[Callable[[], None]]] = {}
        self.execs: dict[int, list[Callable[[], None]]] = {}
        self.last_error = OK
        self.calls: list[str] = []

    # -- helpers
    def _new(self) -> int:
        return next(self._ids) * 4096

    def run_on(self, stream: int, op: Callable[[], None]) -> cudaError_t:
        """Run ``op`` now, or record it if ``stream`` is capturing."""
        if int(stream) not in self.streams:
            return cudaError_t.cudaErrorInvalidResourceHandle
        capture = self.streams[int(stream)]
        if capture is not None:
            capture.append(op)
        else:
            op()
        return OK

    def live(self) -> dict[str, int]:
        return {
            "memory": len(self.memory),
            "streams": len(self.streams),
            "events": len(self.events),
            "graphs": len(self.graphs),
            "graph_execs": len(self.execs),
        }

    # -- errors, device
    def cudaGetErrorName(self, code: Any) -> tuple[cudaError_t, bytes]:
        return OK, cudaError_t(int(code)).name.encode()

    def cudaGetLastError(self) -> tuple[cudaError_t]:
        error, self.last_error = self.last_error, OK
        return (error,)

    def cudaGetDeviceCount(self) -> tuple[cudaError_t, int]:
        return OK, 1

    def cudaGetDeviceProperties(self, device: int) -> tuple[cudaError_t, _Props]:
        return OK, _Props()

    def cudaDriverGetVersion(self) -> tuple[cudaError_t, int]:
        return OK, 13000

    def cudaRuntimeGetVersion(self) -> tuple[cudaError_t, int]:
        return OK, 13000

    # -- streams and events
    def cudaStreamCreateWithFlags(self, flags: int) -> tuple[cudaError_t, int]:
        handle = self._new()
        self.streams[handle] = None
        return OK, handle

    def cudaStreamDestroy(self, stream: int) -> tuple[cudaError_t]:
        if self.streams.pop(int(stream), "gone") == "gone":
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        return (OK,)

    def cudaStreamSynchronize(self, stream: int) -> tuple[cudaError_t]:
        return (OK if int(stream) in self.streams else cudaError_t.cudaErrorInvalidResourceHandle,)

    def cudaStreamWaitEvent(self, stream: int, event: int, flags: int) -> tuple[cudaError_t]:
        if int(event) not in self.events:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        return (self.run_on(stream, lambda: None),)

    def cudaEventCreateWithFlags(self, flags: int) -> tuple[cudaError_t, int]:
        handle = self._new()
        self.events[handle] = float("nan")
        return OK, handle

    def cudaEventDestroy(self, event: int) -> tuple[cudaError_t]:
        return (OK if self.events.pop(int(event), None) is not None else cudaError_t.cudaErrorInvalidResourceHandle,)

    def cudaEventRecord(self, event: int, stream: Any) -> tuple[cudaError_t]:
        handle = int(event)
        if handle not in self.events:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)

        def stamp() -> None:
            self.events[handle] = time.perf_counter()

        return (self.run_on(int(stream), stamp),)

    def cudaEventSynchronize(self, event: int) -> tuple[cudaError_t]:
        return (OK if int(event) in self.events else cudaError_t.cudaErrorInvalidResourceHandle,)

    def cudaEventElapsedTime(self, start: int, end: int) -> tuple[cudaError_t, float]:
        a, b = self.events.get(int(start), float("nan")), self.events.get(int(end), float("nan"))
        if np.isnan(a) or np.isnan(b):
            return cudaError_t.cudaErrorInvalidResourceHandle, 0.0
        return OK, (b - a) * 1e3

    # -- memory
    def _alloc(self, nbytes: int) -> int:
        """Host memory standing for an allocation, aligned as cudaMalloc's (256 bytes, which
        TensorRT requires of every tensor address)."""
        size = max(int(nbytes), 1)
        buf = (ctypes.c_char * (size + ALIGNMENT))()
        address = -(-ctypes.addressof(buf) // ALIGNMENT) * ALIGNMENT
        self.memory[address] = buf
        self.sizes[address] = size
        return address

    def cudaMalloc(self, nbytes: int) -> tuple[cudaError_t, int]:
        return OK, self._alloc(nbytes)

    def cudaFree(self, address: int) -> tuple[cudaError_t]:
        self.sizes.pop(int(address), None)
        return (OK if self.memory.pop(int(address), None) is not None else cudaError_t.cudaErrorInvalidValue,)

    def cudaHostAlloc(self, nbytes: int, flags: int) -> tuple[cudaError_t, int]:
        address = self._alloc(nbytes)
        self.pinned.add(address)
        return OK, address

    def cudaFreeHost(self, address: int) -> tuple[cudaError_t]:
        self.pinned.discard(int(address))
        return self.cudaFree(address)

    def _owned(self, address: int, nbytes: int) -> bool:
        return any(start <= address and address + nbytes <= start + size for start, size in self.sizes.items())

    def cudaMemcpyAsync(self, dst: int, src: int, nbytes: int, kind: cudaMemcpyKind, stream: int) -> tuple[cudaError_t]:
        device = {
            cudaMemcpyKind.cudaMemcpyHostToDevice: (dst,),
            cudaMemcpyKind.cudaMemcpyDeviceToHost: (src,),
            cudaMemcpyKind.cudaMemcpyDeviceToDevice: (dst, src),
        }[kind]
        if not all(self._owned(int(a), int(nbytes)) for a in device):  # a copy off any allocation: a bug
            return (cudaError_t.cudaErrorInvalidValue,)
        return (self.run_on(stream, lambda: ctypes.memmove(int(dst), int(src), int(nbytes))),)

    def cudaMemsetAsync(self, address: int, value: int, nbytes: int, stream: int) -> tuple[cudaError_t]:
        if not self._owned(int(address), int(nbytes)):
            return (cudaError_t.cudaErrorInvalidValue,)
        return (self.run_on(stream, lambda: ctypes.memset(int(address), value, int(nbytes))),)

    # -- graphs
    def cudaStreamBeginCapture(self, stream: int, mode: Any) -> tuple[cudaError_t]:
        if int(stream) not in self.streams or self.streams[int(stream)] is not None:
            return (cudaError_t.cudaErrorInvalidValue,)
        self.streams[int(stream)] = []
        return (OK,)

    def cudaStreamEndCapture(self, stream: int) -> tuple[cudaError_t, int]:
        ops = self.streams.get(int(stream))
        if ops is None:
            return cudaError_t.cudaErrorInvalidValue, 0
        self.streams[int(stream)] = None
        if ops and ops[-1] is _INVALIDATED:
            self.last_error = cudaError_t.cudaErrorStreamCaptureInvalidated
            return cudaError_t.cudaErrorStreamCaptureInvalidated, 0
        handle = self._new()
        self.graphs[handle] = ops
        return OK, handle

    def cudaGraphInstantiate(self, graph: int, flags: int) -> tuple[cudaError_t, int]:
        handle = self._new()
        self.execs[handle] = list(self.graphs[int(graph)])
        return OK, handle

    def cudaGraphLaunch(self, graph_exec: int, stream: int) -> tuple[cudaError_t]:
        capture = self.streams.get(int(stream))
        if capture is not None:  # CUDA refuses a graph launch into a capture, and invalidates it
            capture.append(_INVALIDATED)
            self.last_error = cudaError_t.cudaErrorStreamCaptureUnsupported
            return (cudaError_t.cudaErrorStreamCaptureUnsupported,)
        for op in self.execs[int(graph_exec)]:
            op()
        return (OK,)

    def cudaGraphExecDestroy(self, graph_exec: int) -> tuple[cudaError_t]:
        return (OK if self.execs.pop(int(graph_exec), None) is not None else cudaError_t.cudaErrorInvalidValue,)

    def cudaGraphDestroy(self, graph: int) -> tuple[cudaError_t]:
        return (OK if self.graphs.pop(int(graph), None) is not None else cudaError_t.cudaErrorInvalidValue,)


def _INVALIDATED() -> None:  # noqa: N802 - a marker op
    raise AssertionError("an invalidated capture was replayed")


# ---------------------------------------------------------------- a CPU engine


def host_array(address: int, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """The memory at ``address`` seen as an array (no copy)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = (ctypes.c_char * nbytes).from_address(address)
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


class CpuEngine:
    """The backend interface over ONNX Runtime: a context reads its bound input and writes
    its bound outputs on the stream it is given (through the fake runtime, so captures
    record it). ``sabotage`` plants a bug for the tests that prove the checks catch it."""

    backend = "cpu-test-double"

    def __init__(
        self,
        runtime: FakeRuntime,
        onnx_path: Any,
        precision: str,
        variant: str,
        io: Any,
        sabotage: Callable[[dict[str, np.ndarray]], None] | None = None,
    ) -> None:
        import onnxruntime as ort

        self.runtime, self.precision, self.graph_variant = runtime, precision, variant
        self.session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        self.inputs, self.outputs = io
        self.sabotage = sabotage
        self.contexts_made = 0
        self.closed_contexts = 0
        self.cached_memory_releases = 0

    input_names = property(lambda self: list(self.inputs))
    output_names = property(lambda self: list(self.outputs))

    def tensor_dtype(self, name: str) -> np.dtype[Any]:
        return {**self.inputs, **self.outputs}[name][0]

    num_profiles = 1

    def profile_batch_range(self, index: int) -> tuple[int, int]:
        raise NotImplementedError

    def create_execution_context(self) -> CpuContext:
        self.contexts_made += 1
        return CpuContext(self)

    def reset_peak_memory(self) -> None:
        pass

    def peak_working_bytes(self, contexts: int) -> int:
        return 0

    def release_cached_memory(self) -> None:
        self.cached_memory_releases += 1

    def close(self) -> None:
        pass


class CpuContext:
    def __init__(self, engine: CpuEngine) -> None:
        self.engine = engine
        self.batch: int | None = None
        self.addresses: dict[str, int] = {}
        self.consumed: int | None = None
        self.closed = False

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> None:
        assert tuple(shape[1:]) == self.engine.inputs[name][1], (name, shape)
        self.batch = int(shape[0])

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        assert self.batch is not None, "input shape not set"
        return (self.batch, *{**self.engine.inputs, **self.engine.outputs}[name][1])

    def set_tensor_address(self, name: str, address: int) -> None:
        assert name in self.engine.inputs or name in self.engine.outputs, name
        self.addresses[name] = int(address)

    def set_input_consumed_event(self, event: int | None) -> None:
        self.consumed = event

    def set_optimization_profile(self, index: int, stream: Any) -> None:
        assert index == 0

    def enqueue(self, stream: Any) -> None:
        assert not self.closed, "context used after close"
        engine, batch, addresses = self.engine, self.batch, dict(self.addresses)
        consumed = self.consumed
        assert batch is not None and set(addresses) == set(engine.inputs) | set(engine.outputs), addresses

        def run() -> None:
            name, (dtype, sample) = next(iter(engine.inputs.items()))
            x = host_array(addresses[name], (batch, *sample), dtype).copy()
            if consumed:
                engine.runtime.events[int(consumed)] = time.perf_counter()
            results = dict(zip([o.name for o in engine.session.get_outputs()], engine.session.run(None, {name: x})))
            if engine.sabotage is not None:
                engine.sabotage(results)
            for out, (dtype, shape) in engine.outputs.items():
                np.copyto(host_array(addresses[out], (batch, *shape), dtype), results[out])

        assert engine.runtime.run_on(stream.ptr, run) == OK

    def capture_graph(self, stream: Any) -> Any:
        from trtbench.gpu.cuda import capture_graph

        return capture_graph(stream, lambda: self.enqueue(stream))

    def close(self) -> None:
        self.closed = True
        self.engine.closed_contexts += 1

    def __enter__(self) -> CpuContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
