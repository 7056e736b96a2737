"""What the tutorial's pipeline needs from an engine, for every backend.

An :class:`Engine` is a loaded model (a deserialized TensorRT engine, or a PyTorch
module on the GPU); an :class:`ExecutionContext` runs it on a stream, reading and
writing device buffers whose addresses it was given, as TensorRT's
``IExecutionContext`` does. Both are resources: made on open, freed on ``close()``.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np

from trtbench.gpu.cuda import CapturedGraph, Stream, capture_graph


class BackendUnavailable(RuntimeError):
    """This backend cannot run here; the message says why (used as a skip reason)."""


class UnsupportedApproach(RuntimeError):
    """The approach has no meaning for this backend; the message says why."""


class ExecutionContext(abc.ABC):
    @abc.abstractmethod
    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> None: ...

    @abc.abstractmethod
    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        """The tensor's shape for the current input shapes (outputs included)."""

    @abc.abstractmethod
    def set_tensor_address(self, name: str, address: int) -> None: ...

    @abc.abstractmethod
    def set_input_consumed_event(self, event: int | None) -> None:
        """Record this event on the enqueue stream once the inputs may be overwritten."""

    def set_optimization_profile(self, index: int, stream: Stream) -> None:
        if index != 0:
            raise UnsupportedApproach(f"{type(self).__name__} has a single optimization profile")

    @abc.abstractmethod
    def enqueue(self, stream: Stream) -> None:
        """Enqueue one inference on ``stream``; returns before it completes."""

    def capture_graph(self, stream: Stream) -> CapturedGraph:
        """A CUDA graph of one enqueue with the current shapes and addresses.

        The default captures ``enqueue`` on ``stream`` in thread-local mode; callers
        enqueue once (warm-up) before capturing.
        """
        return capture_graph(stream, lambda: self.enqueue(stream))

    def close(self) -> None:
        pass

    def __enter__(self) -> ExecutionContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Engine(abc.ABC):
    backend: str
    precision: str  # "fp32" or "fp16": the compute precision; outputs are float32 for both
    graph_variant: str  # "logits", "postprocess" or "uint8" (trtbench.catalogue.GRAPH_VARIANTS)

    @property
    @abc.abstractmethod
    def input_names(self) -> list[str]: ...

    @property
    @abc.abstractmethod
    def output_names(self) -> list[str]: ...

    @abc.abstractmethod
    def tensor_dtype(self, name: str) -> np.dtype[Any]: ...

    @property
    def num_profiles(self) -> int:
        return 1

    def profile_batch_range(self, index: int) -> tuple[int, int]:
        """(min, max) batch size of an optimization profile."""
        raise UnsupportedApproach(f"{self.backend} has no optimization profiles")

    @abc.abstractmethod
    def create_execution_context(self) -> ExecutionContext: ...

    def reset_peak_memory(self) -> None:
        """Start a new peak-memory window (see ``peak_working_bytes``)."""

    def peak_working_bytes(self, contexts: int) -> int:
        """Device memory the backend itself used (weights, activations) since the reset."""
        return 0

    def release_cached_memory(self) -> None:
        """Give back device memory the backend cached for streams that are gone (called
        when a pipeline closes; torch keeps a pool per stream)."""

    def close(self) -> None:
        pass

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
