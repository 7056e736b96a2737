"""PyTorch backend: ResNet-18 on the GPU behind TensorRT's execution-context interface.

The context reads its input from, and writes its output to, the device buffers whose
addresses the pipeline binds, on the pipeline's own stream, so every approach's buffer,
stream, event and thread handling is exercised exactly as with TensorRT.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from trtbench.gpu.backends.base import Engine, ExecutionContext
from trtbench.gpu.cuda import CapturedGraph, Stream, cuda_array_interface, cuda_call, cudart

INPUT, OUTPUT = "input0", "output0"
NUM_CLASSES = 1000


class _CudaView:
    """A bound address seen as an array by ``torch.as_tensor`` (no copy)."""

    def __init__(self, address: int, shape: tuple[int, ...]) -> None:
        self.__cuda_array_interface__ = cuda_array_interface(address, shape)


class TorchGraph(CapturedGraph):
    """A ``torch.cuda.CUDAGraph``: its private memory pool keeps the intermediates alive."""

    def __init__(self, graph: "torch.cuda.CUDAGraph") -> None:
        self._torch_graph = graph
        self._closed = False

    def launch(self, stream: Stream) -> None:
        # replay() launches on torch's current stream: make it ours.
        with torch.cuda.stream(torch.cuda.ExternalStream(stream.ptr)):
            self._torch_graph.replay()

    def _release(self) -> None:
        self._torch_graph.reset()


class TorchContext(ExecutionContext):
    def __init__(self, engine: "TorchEngine") -> None:
        self._engine = engine
        self._input_shape: tuple[int, ...] | None = None
        self._addresses: dict[str, int] = {}
        self._consumed_event: int | None = None

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> None:
        if name != INPUT or len(shape) != 4 or tuple(shape[1:]) != (3, 224, 224) or shape[0] < 1:
            raise ValueError(f"torch backend: input {name!r} shape {shape} is not [N, 3, 224, 224] of input0")
        self._input_shape = tuple(int(d) for d in shape)

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        if self._input_shape is None:
            raise RuntimeError("torch backend: set_input_shape before asking for tensor shapes")
        if name == INPUT:
            return self._input_shape
        if name == OUTPUT:
            return (self._input_shape[0], NUM_CLASSES)
        raise KeyError(f"torch backend: no tensor named {name!r}")

    def set_tensor_address(self, name: str, address: int) -> None:
        if name not in (INPUT, OUTPUT):
            raise KeyError(f"torch backend: no tensor named {name!r}")
        self._addresses[name] = int(address)

    def set_input_consumed_event(self, event: int | None) -> None:
        self._consumed_event = event

    def _views(self) -> tuple[torch.Tensor, torch.Tensor]:
        missing = [n for n in (INPUT, OUTPUT) if n not in self._addresses]
        if missing:
            raise RuntimeError(f"torch backend: no address bound for {missing}")
        x = torch.as_tensor(_CudaView(self._addresses[INPUT], self.get_tensor_shape(INPUT)), device="cuda")
        y = torch.as_tensor(_CudaView(self._addresses[OUTPUT], self.get_tensor_shape(OUTPUT)), device="cuda")
        return x, y

    def _forward(self, consumed_event: int | None) -> None:
        x, y = self._views()
        engine = self._engine
        # The cast/layout change copies the input: after it, the input buffer is free.
        xin = x.to(dtype=engine.compute_dtype, memory_format=torch.channels_last)
        if consumed_event is not None:
            stream = cudart.cudaStream_t(torch.cuda.current_stream().cuda_stream)
            cuda_call("cudaEventRecord", cudart.cudaEventRecord(cudart.cudaEvent_t(consumed_event), stream))
        y.copy_(engine.model(xin))

    def enqueue(self, stream: Stream) -> None:
        with torch.cuda.stream(torch.cuda.ExternalStream(stream.ptr)), torch.inference_mode():
            self._forward(self._consumed_event)

    def capture_graph(self, stream: Stream) -> CapturedGraph:
        # torch's allocator must know about the capture (private pool), so use its API;
        # the input-consumed event cannot be recorded inside a graph: callers record it after.
        graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(
            graph, stream=torch.cuda.ExternalStream(stream.ptr), capture_error_mode="thread_local"
        ):
            self._forward(None)
        return TorchGraph(graph)


class TorchEngine(Engine):
    backend = "torch"

    def __init__(self, model: torch.nn.Module, precision: str = "fp32") -> None:
        if precision not in ("fp32", "fp16"):
            raise ValueError(f"torch backend: precision {precision!r} is not fp32 or fp16")
        if not torch.cuda.is_available():
            raise RuntimeError("torch backend needs a CUDA device")
        self.precision = precision
        self.compute_dtype = torch.float16 if precision == "fp16" else torch.float32
        # fp32 with TF32 allowed, as TensorRT's default fp32 engines allow it.
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
        model = copy.deepcopy(model)  # the session's CPU model stays fp32 and untouched
        self.model = model.to(device="cuda", dtype=self.compute_dtype, memory_format=torch.channels_last).eval()

    @property
    def input_names(self) -> list[str]:
        return [INPUT]

    @property
    def output_names(self) -> list[str]:
        return [OUTPUT]

    def tensor_dtype(self, name: str) -> np.dtype[Any]:
        return np.dtype(np.float32)

    def create_execution_context(self) -> TorchContext:
        return TorchContext(self)

    def reset_peak_memory(self) -> None:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()

    def peak_working_bytes(self, contexts: int) -> int:
        # torch's allocator holds weights and activations of every context in this process
        return int(torch.cuda.max_memory_allocated())

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]
        torch.cuda.empty_cache()

