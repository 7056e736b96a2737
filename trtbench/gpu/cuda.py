"""A checked CUDA runtime layer on cuda-python's runtime bindings.

Every call goes through :func:`cuda_call`, which turns the bindings' ``(err, *values)``
tuples into values or a :class:`CudaError` named after the CUDA error and the
operation. One class per resource (stream, event, device buffer, pinned host
buffer), each owning its handle and releasing it on ``close()`` or context exit.
"""

from __future__ import annotations

import contextlib
import ctypes
import re
import subprocess
import threading
from pathlib import Path
from typing import Any

import numpy as np

try:  # cuda-python 13 (and 12.x >= 12.6): the only spelling that still works
    from cuda.bindings import runtime as cudart
except ImportError:  # pragma: no cover - cuda-python 12.x before the bindings split
    from cuda import cudart


class CudaError(RuntimeError):
    """A CUDA runtime call returned an error; ``name`` is the CUDA error's name."""

    def __init__(self, operation: str, code: Any) -> None:
        self.operation = operation
        self.code = code
        self.name = error_name(code)
        super().__init__(f"{operation} failed: {self.name} ({int(code)})")


def error_name(code: Any) -> str:
    """The CUDA name of an error code (``cudaErrorMemoryAllocation``), without a GPU."""
    err, name = cudart.cudaGetErrorName(code)
    if err == cudart.cudaError_t.cudaSuccess and name:
        return name.decode() if isinstance(name, bytes) else str(name)
    return getattr(code, "name", f"cudaError {int(code)}")


def cuda_call(operation: str, result: Any) -> Any:
    """Check a binding's ``(err, *values)`` result: return the value(s) or raise.

    ``cuda_call("cudaMalloc", cudart.cudaMalloc(n))`` returns the pointer; a call with
    no values returns None, one with several returns a tuple.
    """
    if isinstance(result, tuple):
        err, values = result[0], result[1:]
    else:
        err, values = result, ()
    if err != cudart.cudaError_t.cudaSuccess:
        raise CudaError(operation, err)
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def device_count() -> int:
    """CUDA devices visible here; 0 when there is no driver or device (never raises)."""
    err, count = cudart.cudaGetDeviceCount()
    return int(count) if err == cudart.cudaError_t.cudaSuccess else 0


def no_device_reason() -> str | None:
    """Why CUDA cannot run here (the CUDA runtime's error in brackets), or None if it can."""
    err, count = cudart.cudaGetDeviceCount()
    if err != cudart.cudaError_t.cudaSuccess:
        return f"no NVIDIA GPU or driver found ({error_name(err)})"
    if count == 0:
        return "no NVIDIA GPU found (the driver reports 0 devices)"
    return None


def device_properties(device: int = 0) -> dict[str, Any]:
    props = cuda_call("cudaGetDeviceProperties", cudart.cudaGetDeviceProperties(device))
    name = props.name.decode(errors="replace") if isinstance(props.name, bytes) else str(props.name)
    driver = cuda_call("cudaDriverGetVersion", cudart.cudaDriverGetVersion())
    runtime = cuda_call("cudaRuntimeGetVersion", cudart.cudaRuntimeGetVersion())
    return {
        "gpu_name": name.rstrip("\x00"),
        "compute_capability": f"{props.major}.{props.minor}",
        "cuda_driver": _cuda_version(driver),
        "cuda_runtime": _cuda_version(runtime),
        "nvidia_driver": nvidia_driver_version(),
        "total_memory_bytes": int(props.totalGlobalMem),
    }


def nvidia_driver_version() -> str:
    """The kernel driver's own version (580.159.04): CUDA reports only the API version it
    supports (13.0), which stays the same across driver updates."""
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
    except OSError:
        text = ""
    match = re.search(r"Kernel Module(?: for \S+)?\s+(\d+\.\d+(?:\.\d+)?)", text)
    if match:
        return match.group(1)
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        out = []
    return out[0] if out else "unknown"


def _cuda_version(v: int) -> str:
    return f"{v // 1000}.{(v % 1000) // 10}"


class _AllocationTracker:
    """Bytes of device memory this process holds through DeviceBuffer, and its peak."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.current = 0
        self.peak = 0

    def add(self, nbytes: int) -> None:
        with self._lock:
            self.current += nbytes
            self.peak = max(self.peak, self.current)

    def remove(self, nbytes: int) -> None:
        with self._lock:
            self.current -= nbytes

    def reset_peak(self) -> None:
        with self._lock:
            self.peak = self.current


device_allocations = _AllocationTracker()


class _Resource:
    """Owns one handle; ``close()`` is idempotent and also runs on context exit."""

    _closed = True

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._release()

    def _release(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # last resort; tests close explicitly
        with contextlib.suppress(Exception):
            self.close()


_live_streams: set[int] = set()


def live_stream_handles() -> frozenset[int]:
    """Handles of the streams made here and not yet destroyed (a raw handle cannot be asked
    safely whether it is a stream: the TensorRT double checks what it is given against these)."""
    return frozenset(_live_streams)


class Stream(_Resource):
    """A non-blocking CUDA stream (never the legacy default stream); ``label`` names it
    in timelines ("copy", "compute", ...)."""

    def __init__(self, label: str = "stream") -> None:
        self.label = label
        self.handle = cuda_call(
            "cudaStreamCreateWithFlags",
            cudart.cudaStreamCreateWithFlags(cudart.cudaStreamNonBlocking),
        )
        self._closed = False
        _live_streams.add(self.ptr)

    @property
    def ptr(self) -> int:
        return int(self.handle)

    def synchronize(self) -> None:
        cuda_call("cudaStreamSynchronize", cudart.cudaStreamSynchronize(self.handle))

    def wait(self, event: Event) -> None:
        cuda_call("cudaStreamWaitEvent", cudart.cudaStreamWaitEvent(self.handle, event.handle, 0))

    def _release(self) -> None:
        _live_streams.discard(self.ptr)
        cuda_call("cudaStreamDestroy", cudart.cudaStreamDestroy(self.handle))


class Event(_Resource):
    """A CUDA event; ``timing=False`` makes a cheaper synchronisation-only event."""

    def __init__(self, timing: bool = True) -> None:
        flags = cudart.cudaEventDefault if timing else cudart.cudaEventDisableTiming
        self.handle = cuda_call("cudaEventCreateWithFlags", cudart.cudaEventCreateWithFlags(flags))
        self._closed = False

    @property
    def ptr(self) -> int:
        return int(self.handle)

    def record(self, stream: Stream) -> None:
        cuda_call("cudaEventRecord", cudart.cudaEventRecord(self.handle, stream.handle))

    def synchronize(self) -> None:
        cuda_call("cudaEventSynchronize", cudart.cudaEventSynchronize(self.handle))

    def elapsed_ms(self, end: Event) -> float:
        """Milliseconds from this event to ``end`` (both recorded and complete)."""
        return float(cuda_call("cudaEventElapsedTime", cudart.cudaEventElapsedTime(self.handle, end.handle)))

    def _release(self) -> None:
        cuda_call("cudaEventDestroy", cudart.cudaEventDestroy(self.handle))


_TYPESTR = {np.dtype(t): np.dtype(t).str for t in (np.float32, np.float16, np.int32, np.int64, np.uint8)}


def cuda_array_interface(address: int, shape: tuple[int, ...], dtype: Any = np.float32) -> dict[str, Any]:
    """``__cuda_array_interface__`` (v3) of device memory. No "stream" key: callers order
    work on their own streams explicitly."""
    return {
        "shape": shape,
        "typestr": _TYPESTR[np.dtype(dtype)],
        "data": (address, False),
        "version": 3,
        "strides": None,
    }


class DeviceBuffer(_Resource):
    """``cudaMalloc``'d memory for one tensor; PyTorch reads it via ``__cuda_array_interface__``."""

    def __init__(self, shape: tuple[int, ...], dtype: Any = np.float32) -> None:
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.nbytes = int(np.prod(self.shape)) * self.dtype.itemsize
        self.ptr = int(cuda_call("cudaMalloc", cudart.cudaMalloc(self.nbytes)))
        self._closed = False
        device_allocations.add(self.nbytes)

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        return cuda_array_interface(self.ptr, self.shape, self.dtype)

    def upload(self, host: np.ndarray, stream: Stream) -> None:
        """Copy ``host`` into the buffer's first bytes on ``stream`` (synchronous from pageable memory)."""
        _check_copy(host, self)
        cuda_call(
            "cudaMemcpyAsync(HostToDevice)",
            cudart.cudaMemcpyAsync(
                self.ptr, host.ctypes.data, host.nbytes, cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, stream.handle
            ),
        )

    def download(self, host: np.ndarray, stream: Stream) -> None:
        """Copy the buffer's first ``host.nbytes`` bytes into ``host`` on ``stream``."""
        _check_copy(host, self)
        cuda_call(
            "cudaMemcpyAsync(DeviceToHost)",
            cudart.cudaMemcpyAsync(
                host.ctypes.data, self.ptr, host.nbytes, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream.handle
            ),
        )

    def copy_into(self, dest: DeviceBuffer, stream: Stream, nbytes: int | None = None, dest_offset: int = 0) -> None:
        """Device-to-device copy of this buffer's first ``nbytes`` into ``dest`` at ``dest_offset`` bytes."""
        nbytes = self.nbytes if nbytes is None else nbytes
        if not 0 <= nbytes <= self.nbytes or dest_offset < 0 or dest_offset + nbytes > dest.nbytes:
            raise ValueError(
                f"copy of {nbytes} bytes from a {self.nbytes}-byte buffer to offset {dest_offset} "
                f"of a {dest.nbytes}-byte buffer is out of bounds"
            )
        cuda_call(
            "cudaMemcpyAsync(DeviceToDevice)",
            cudart.cudaMemcpyAsync(
                dest.ptr + dest_offset, self.ptr, nbytes, cudart.cudaMemcpyKind.cudaMemcpyDeviceToDevice, stream.handle
            ),
        )

    def poison(self, stream: Stream) -> None:
        """Fill with 0xFF bytes: NaN in every float format, so an unwritten output shows."""
        cuda_call("cudaMemsetAsync", cudart.cudaMemsetAsync(self.ptr, 0xFF, self.nbytes, stream.handle))

    def _release(self) -> None:
        cuda_call("cudaFree", cudart.cudaFree(self.ptr))
        device_allocations.remove(self.nbytes)


def _check_copy(host: np.ndarray, device: DeviceBuffer) -> None:
    if host.nbytes > device.nbytes or host.dtype != device.dtype or not host.flags.c_contiguous:
        raise ValueError(
            f"copy between a {host.shape} {host.dtype} host array and a {device.shape} {device.dtype} device "
            "buffer: the host array must be C-contiguous, of the same dtype and no larger"
        )


class PinnedBuffer(_Resource):
    """Page-locked host memory (``cudaHostAlloc``), seen as a numpy array in ``.array``."""

    def __init__(self, shape: tuple[int, ...], dtype: Any = np.float32) -> None:
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape)) * dtype.itemsize
        self.ptr = int(cuda_call("cudaHostAlloc", cudart.cudaHostAlloc(nbytes, cudart.cudaHostAllocDefault)))
        self._closed = False
        raw = (ctypes.c_byte * nbytes).from_address(self.ptr)
        self.array: np.ndarray = np.frombuffer(raw, dtype=dtype).reshape(shape)

    def _release(self) -> None:
        # Views handed out must not outlive the buffer; dropping ours makes misuse loud.
        self.array = np.empty(0, dtype=self.array.dtype)
        cuda_call("cudaFreeHost", cudart.cudaFreeHost(self.ptr))


class CapturedGraph(_Resource):
    """An instantiated CUDA graph captured from work enqueued on a stream."""

    def __init__(self, graph: Any, graph_exec: Any) -> None:
        self._graph = graph
        self._exec = graph_exec
        self._closed = False

    def launch(self, stream: Stream) -> None:
        cuda_call("cudaGraphLaunch", cudart.cudaGraphLaunch(self._exec, stream.handle))

    def _release(self) -> None:
        cuda_call("cudaGraphExecDestroy", cudart.cudaGraphExecDestroy(self._exec))
        cuda_call("cudaGraphDestroy", cudart.cudaGraphDestroy(self._graph))


def capture_graph(stream: Stream, enqueue: Any) -> CapturedGraph:
    """Capture what ``enqueue()`` puts on ``stream`` (thread-local mode) into a graph.

    If capture fails the capture is ended (so the stream is usable again) and the
    error raised names what failed.
    """
    cuda_call(
        "cudaStreamBeginCapture",
        cudart.cudaStreamBeginCapture(stream.handle, cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal),
    )
    try:
        enqueue()
    except BaseException:
        _end_failed_capture(stream)  # the enqueue's error is the one to report
        raise
    err, graph = cudart.cudaStreamEndCapture(stream.handle)
    if err != cudart.cudaError_t.cudaSuccess:
        _discard(graph)
        cudart.cudaGetLastError()  # clear the capture's error, so that a fallback enqueue works
        raise CudaError("cudaStreamEndCapture", err)
    try:
        graph_exec = cuda_call("cudaGraphInstantiate", cudart.cudaGraphInstantiate(graph, 0))
    except CudaError:
        cudart.cudaGraphDestroy(graph)
        raise
    return CapturedGraph(graph, graph_exec)


def _discard(graph: Any) -> None:
    """Destroy a (partial) graph that a failed capture may still hand back."""
    if graph is not None and int(graph) != 0:
        cudart.cudaGraphDestroy(graph)


def _end_failed_capture(stream: Stream) -> None:
    """End a capture that went wrong: drop what it captured and clear the sticky error
    (as trtexec does), so that the stream and the fallback path work afterwards."""
    _, graph = cudart.cudaStreamEndCapture(stream.handle)
    _discard(graph)
    cudart.cudaGetLastError()
