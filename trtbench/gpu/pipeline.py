"""The pieces every approach's pipeline is built from.

* :class:`Workload`: the batches a round runs (host arrays) and their references.
* :func:`postprocess`: the tutorial's host work per batch (softmax, argmax, max
  probability, the printed summary).
* :class:`Sink`: where each batch's logits, predicted classes and timestamps land,
  poisoned before every round so an unwritten batch shows as NaN / -1.
* :class:`BatchEvents`: CUDA events per batch for GPU time.
* :class:`SlotRing`: double-buffering of host output slots between the thread that
  fills them and the thread that post-processes them.
* :class:`Pipeline`: the base of every approach (setup, prepare_round, run_round,
  metrics, close).
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import threading
import time
from typing import Any, Iterator, Sequence

import numpy as np

from trtbench.gpu.backends.base import Engine, ExecutionContext
from trtbench.correctness import Comparison, compare
from trtbench.gpu.cuda import DeviceBuffer, Event, Stream, device_allocations

try:
    import nvtx as _nvtx
except ImportError:  # pragma: no cover - nvtx is in requirements; ranges are optional
    _nvtx = None


@contextlib.contextmanager
def nvtx_range(message: str, color: str = "purple") -> Iterator[None]:
    """An NVTX push/pop range (names as in the tutorial), a no-op without nvtx."""
    if _nvtx is None:
        yield
        return
    _nvtx.push_range(message=message, color=color)
    try:
        yield
    finally:
        _nvtx.pop_range()


@dataclasses.dataclass
class Workload:
    """What one round runs: host input arrays (pageable or pinned) and reference logits."""

    inputs: list[np.ndarray]
    references: list[np.ndarray]
    host_memory: str  # "pageable" or "pinned"

    def __post_init__(self) -> None:
        if len(self.inputs) != len(self.references) or not self.inputs:
            raise ValueError("a workload needs one reference per input batch, and at least one batch")

    @property
    def batches(self) -> int:
        return len(self.inputs)

    @property
    def max_batch(self) -> int:
        return max(x.shape[0] for x in self.inputs)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


@dataclasses.dataclass
class BatchResult:
    classes: np.ndarray  # predicted class per image
    max_probs: np.ndarray
    summary: str  # what the tutorial prints; kept, not printed


def postprocess(logits: np.ndarray) -> BatchResult:
    probs = softmax(logits)
    classes = probs.argmax(axis=1)
    max_probs = probs.max(axis=1)
    summary = f"classes {np.array2string(classes, threshold=10**6)}\nmax prob {np.array2string(max_probs, threshold=10**6)}"
    return BatchResult(classes, max_probs, summary)


class Sink:
    """Per-round record of each batch's output, filled by the pipeline, read by the checks."""

    def __init__(self, batch_sizes: Sequence[int], num_classes: int = 1000) -> None:
        self.logits = [np.empty((b, num_classes), np.float32) for b in batch_sizes]
        self.classes = [np.empty(b, np.int64) for b in batch_sizes]
        self.start = np.empty(len(batch_sizes))
        self.done = np.empty(len(batch_sizes))
        self.poison()

    def poison(self) -> None:
        for logits, classes in zip(self.logits, self.classes):
            logits.fill(np.nan)
            classes.fill(-1)
        self.start.fill(np.nan)
        self.done.fill(np.nan)

    def begin(self, index: int) -> None:
        self.start[index] = time.perf_counter()

    def store(self, index: int, host_logits: np.ndarray) -> None:
        """Post-process one batch's host output and record it (the tutorial's per-batch host work)."""
        result = postprocess(host_logits)
        np.copyto(self.logits[index], host_logits)  # a copy for the checks: the slot is reused
        self.classes[index][:] = result.classes
        self.done[index] = time.perf_counter()

    def latencies_ms(self) -> np.ndarray:
        return (self.done - self.start) * 1e3

    def last_n_ms(self, n: int = 3) -> float:
        """The tutorial's figure: wall time from the start of batch -n to the end of the last."""
        n = min(n, len(self.start))
        return float((np.nanmax(self.done[-n:]) - self.start[-n]) * 1e3)


class BatchEvents:
    """A start and end CUDA event per batch (plus upload end), read after the round."""

    def __init__(self, batches: int) -> None:
        self.start = [Event() for _ in range(batches)]
        self.uploaded = [Event() for _ in range(batches)]
        self.end = [Event() for _ in range(batches)]
        self.gpu_ms: list[list[float]] = []  # per round, per batch
        self.upload_ms: list[list[float]] = []
        self._recorded = False

    def mark_recorded(self) -> None:
        self._recorded = True

    def harvest(self) -> None:
        """Collect the last round's times (all its work has completed)."""
        if not self._recorded:
            return
        self._recorded = False
        for e in self.end:
            e.synchronize()
        self.gpu_ms.append([s.elapsed_ms(e) for s, e in zip(self.start, self.end)])
        self.upload_ms.append([s.elapsed_ms(u) for s, u in zip(self.start, self.uploaded)])

    def close(self) -> None:
        for e in (*self.start, *self.uploaded, *self.end):
            e.close()


class SlotRing:
    """N reusable slots handed between a producer and a consumer thread.

    ``acquire(k)`` blocks until slot ``k`` is free (its last consumer released it);
    ``release(k)`` frees it. With 2 slots, batch i+1's output lands in the other slot
    while batch i is post-processed, and batch i+2 waits until batch i is done: the
    tutorial's race (the next copy overwriting the buffer being read) cannot happen.
    """

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("a ring needs at least one slot")
        self._free = [threading.Semaphore(1) for _ in range(slots)]
        self.slots = slots

    def slot_for(self, position: int) -> int:
        return position % self.slots

    def acquire(self, slot: int, timeout: float | None = 60.0) -> None:
        if not self._free[slot].acquire(timeout=timeout):
            raise TimeoutError(f"output slot {slot} was not released within {timeout} s")

    def release(self, slot: int) -> None:
        self._free[slot].release()


class WorkerThread:
    """One persistent thread running submitted jobs in order; ``drain`` waits for them and
    re-raises the first error. Persistent because torch (and TensorRT) set up per-thread
    state (cuDNN/cuBLAS handles) on a thread's first GPU call: new threads per round cost that every round."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                job()  # jobs release their output slot even when they fail
            except BaseException as exc:  # the first error is surfaced by drain()
                if self._error is None:
                    self._error = exc
            finally:
                self._jobs.task_done()

    def submit(self, job) -> None:  # type: ignore[no-untyped-def]
        self._jobs.put(job)

    def drain(self) -> None:
        self._jobs.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def close(self) -> None:
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join(timeout=60)


class Pipeline:
    """Base of every approach: resources made in ``__init__``, freed in ``close()``.

    ``prepare_round`` (untimed, pytest-benchmark's ``setup``) poisons the outputs and
    collects the previous round's event times; ``run_round`` is what is timed.
    """

    name = "pipeline"

    def __init__(self, engine: Engine, workload: Workload, shared: "Pipeline | None" = None) -> None:
        self.engine = engine
        self.workload = workload
        self._owned: list[Any] = []  # closed in reverse order
        if shared is None:
            self.sink = Sink([x.shape[0] for x in workload.inputs])
            self.events = self.own(BatchEvents(workload.batches))
        else:  # a part of a larger pipeline (multi_context): record into its sink and events
            self.sink, self.events = shared.sink, shared.events
        self.input_name = engine.input_names[0]
        self.output_name = engine.output_names[0]
        self.contexts_used = 1
        engine.reset_peak_memory()
        device_allocations.reset_peak()

    @classmethod
    def open(cls, *args: Any, **kwargs: Any) -> "Pipeline":
        """Construct; if construction fails part-way, release what was already made."""
        self = cls.__new__(cls)
        try:
            self.__init__(*args, **kwargs)  # type: ignore[misc]
        except BaseException:
            self.close()
            raise
        return self

    def own(self, resource: Any) -> Any:
        self._owned.append(resource)
        return resource

    def new_context(self) -> ExecutionContext:
        return self.own(self.engine.create_execution_context())

    def output_shape(self, context: ExecutionContext, batch: int) -> tuple[int, ...]:
        context.set_input_shape(self.input_name, (batch, *self.workload.inputs[0].shape[1:]))
        return context.get_tensor_shape(self.output_name)

    def device_outputs(self) -> list[DeviceBuffer]:
        """Device output buffers to poison before a round (those that persist across rounds)."""
        return []

    def host_outputs(self) -> list[np.ndarray]:
        return []

    def poison_stream(self) -> Stream | None:
        return None

    def prepare_round(self) -> None:
        self.events.harvest()
        self.sink.poison()
        for host in self.host_outputs():
            host.fill(np.nan)
        stream = self.poison_stream()
        if stream is not None:
            for buf in self.device_outputs():
                buf.poison(stream)
            stream.synchronize()

    def run_round(self) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """After the last round: collect its event times."""
        self.events.harvest()

    def check_round(self) -> Comparison:
        """The last round's outputs (every batch) against the reference."""
        return compare(self.sink.logits, self.sink.classes, self.workload.references, self.engine.precision)

    def extra_metrics(self) -> dict[str, Any]:
        return {}

    def peak_device_bytes(self) -> int:
        return device_allocations.peak + self.engine.peak_working_bytes(self.contexts_used)

    def close(self) -> None:
        errors = []
        owned = self.__dict__.setdefault("_owned", [])  # also when __init__ failed early
        while owned:
            try:
                owned.pop().close()
            except Exception as exc:  # keep releasing the rest; report the first
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
