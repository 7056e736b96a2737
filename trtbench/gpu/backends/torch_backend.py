"""PyTorch backend: the model's graph on the GPU behind TensorRT's execution-context interface.

The context reads its input from, and writes its outputs to, the device buffers whose
addresses the pipeline binds, on the pipeline's own stream, so every approach's buffer,
stream, event and thread handling is exercised exactly as with TensorRT. It runs the
same graph variants as the ONNX files (``trtbench.graphs.classifier_graph``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from trtbench.catalogue import ModelSpec, graph_io
from trtbench.gpu.backends.base import Engine, ExecutionContext
from trtbench.gpu.cuda import CapturedGraph, Stream, cuda_array_interface, cuda_call, cudart
from trtbench.graphs import classifier_graph


class _CudaView:
    """A bound address seen as an array by ``torch.as_tensor`` (no copy)."""

    def __init__(self, address: int, shape: tuple[int, ...], dtype: np.dtype[Any]) -> None:
        self.__cuda_array_interface__ = cuda_array_interface(address, shape, dtype)


class TorchGraph(CapturedGraph):
    """A ``torch.cuda.CUDAGraph``: its private memory pool keeps the intermediates alive."""

    def __init__(self, graph: torch.cuda.CUDAGraph) -> None:
        self._torch_graph = graph
        self._closed = False

    def launch(self, stream: Stream) -> None:
        # replay() launches on torch's current stream: make it ours.
        with torch.cuda.stream(torch.cuda.ExternalStream(stream.ptr)):
            self._torch_graph.replay()

    def _release(self) -> None:
        self._torch_graph.reset()


class TorchContext(ExecutionContext):
    def __init__(self, engine: TorchEngine) -> None:
        self._engine = engine
        self._batch: int | None = None
        self._addresses: dict[str, int] = {}
        self._consumed_event: int | None = None

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> None:
        sample = self._engine.inputs.get(name, (None, None))[1]
        if sample is None or len(shape) != 1 + len(sample) or tuple(shape[1:]) != sample or shape[0] < 1:
            raise ValueError(
                f"torch backend: input {name!r} shape {tuple(shape)} is not [N, "
                f"{', '.join(map(str, sample or ()))}] of {', '.join(self._engine.inputs)}"
            )
        self._batch = int(shape[0])

    def _io(self, name: str) -> tuple[np.dtype[Any], tuple[int, ...]]:
        io = {**self._engine.inputs, **self._engine.outputs}
        if name not in io:
            raise KeyError(f"torch backend: no tensor named {name!r} (tensors: {', '.join(io)})")
        return io[name]

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        _, sample = self._io(name)
        if self._batch is None:
            raise RuntimeError("torch backend: set_input_shape before asking for tensor shapes")
        return (self._batch, *sample)

    def set_tensor_address(self, name: str, address: int) -> None:
        self._io(name)
        self._addresses[name] = int(address)

    def set_input_consumed_event(self, event: int | None) -> None:
        self._consumed_event = event

    def _view(self, name: str) -> torch.Tensor:
        dtype, _ = self._io(name)
        return torch.as_tensor(_CudaView(self._addresses[name], self.get_tensor_shape(name), dtype), device="cuda")

    def _forward(self, consumed_event: int | None) -> None:
        names = [*self._engine.inputs, *self._engine.outputs]
        missing = [n for n in names if n not in self._addresses]
        if missing:
            raise RuntimeError(f"torch backend: no address bound for {missing}")
        graph = self._engine.graph
        # The first op copies the input (cast/layout/normalisation): after it, the input buffer is free.
        x = graph.prepare(self._view(names[0]))
        if consumed_event is not None:
            stream = cudart.cudaStream_t(torch.cuda.current_stream().cuda_stream)
            cuda_call("cudaEventRecord", cudart.cudaEventRecord(cudart.cudaEvent_t(consumed_event), stream))
        results = graph.head(x)
        for name, value in zip(self._engine.outputs, results if isinstance(results, tuple) else (results,)):
            self._view(name).copy_(value)

    def enqueue(self, stream: Stream) -> None:
        with torch.cuda.stream(torch.cuda.ExternalStream(stream.ptr)), torch.inference_mode():
            self._forward(self._consumed_event)

    def capture_graph(self, stream: Stream) -> CapturedGraph:
        # torch's allocator must know about the capture (private pool), so use its API;
        # the input-consumed event cannot be recorded inside a graph: callers record it after.
        graph = torch.cuda.CUDAGraph()
        with (
            torch.inference_mode(),
            torch.cuda.graph(graph, stream=torch.cuda.ExternalStream(stream.ptr), capture_error_mode="thread_local"),
        ):
            self._forward(None)
        return TorchGraph(graph)


class TorchEngine(Engine):
    backend = "torch"

    def __init__(
        self, model: torch.nn.Module, spec: ModelSpec, precision: str = "fp32", variant: str = "logits"
    ) -> None:
        if precision not in ("fp32", "fp16"):
            raise ValueError(f"torch backend: precision {precision!r} is not fp32 or fp16")
        if not torch.cuda.is_available():
            raise RuntimeError("torch backend needs a CUDA device")
        self.precision = precision
        self.graph_variant = variant
        self.inputs, self.outputs = graph_io(spec, variant)
        # fp32 with TF32 allowed, as TensorRT's default fp32 engines allow it.
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
        graph = classifier_graph(model, variant, fp16=precision == "fp16")  # a copy: the CPU model stays
        self.graph = graph.to(device="cuda", memory_format=torch.channels_last).eval()

    @property
    def input_names(self) -> list[str]:
        return list(self.inputs)

    @property
    def output_names(self) -> list[str]:
        return list(self.outputs)

    def tensor_dtype(self, name: str) -> np.dtype[Any]:
        io = {**self.inputs, **self.outputs}
        if name not in io:
            raise KeyError(f"torch backend: no tensor named {name!r}")
        return io[name][0]

    def create_execution_context(self) -> TorchContext:
        return TorchContext(self)

    def reset_peak_memory(self) -> None:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()

    def peak_working_bytes(self, contexts: int) -> int:
        # torch's allocator holds weights and activations of every context in this process
        return int(torch.cuda.max_memory_allocated())

    def release_cached_memory(self) -> None:
        # torch keeps, per stream it has seen, a cuBLAS workspace and a pool of freed
        # blocks; our streams die with the pipeline, so neither would ever be reused
        # (seen: +29 GB over 100 opens of the baseline; +2.3 GB with empty_cache alone).
        torch.cuda.synchronize()
        torch._C._cuda_clearCublasWorkspaces()
        torch.cuda.empty_cache()

    def close(self) -> None:
        self.graph = None  # type: ignore[assignment]
        torch.cuda.empty_cache()
