"""The pieces every approach's pipeline is built from.

* :class:`Workload`: the batches a round runs (host arrays) and their references.
* :func:`postprocess`: the tutorial's host work per batch (softmax, argmax, max
  probability, the printed summary).
* :class:`Sink`: where each batch's outputs and host timestamps land, poisoned before
  every round so an unwritten batch shows as NaN / -1.
* :class:`BatchEvents`: CUDA events per batch (upload, compute, download), harvested
  into per-round samples and the last round's timeline.
* :class:`SlotRing`: double-buffering of host output slots between the thread that
  fills them and the thread that post-processes them.
* :class:`BoundContext`: an execution context that is told a shape, address or event
  only when it changes.
* :class:`Pipeline`: the base of every approach (setup, prepare_round, run_round,
  metrics, close).
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from trtbench.catalogue import OUTPUT_NAME, Approach, approach
from trtbench.correctness import Comparison, PipelineOutputs, compare, softmax
from trtbench.figures import busy_ms
from trtbench.gpu.backends.base import Engine, ExecutionContext
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


def poison_host(array: np.ndarray) -> None:
    """0xFF in every byte: NaN in floats, -1 in signed integers (as ``DeviceBuffer.poison``)."""
    array.view(np.uint8).fill(0xFF)


@dataclasses.dataclass
class Workload:
    """What one round runs: host input arrays (pageable or pinned, in the graph's input
    dtype and layout) and each batch's reference outputs."""

    inputs: list[np.ndarray]
    references: list[dict[str, np.ndarray]]
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

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.inputs[0].shape[1:])

    def batch_shape(self, batch: int) -> tuple[int, ...]:
        return (batch, *self.sample_shape)

    @property
    def num_classes(self) -> int:
        return int(self.references[0][OUTPUT_NAME].shape[1])


@dataclasses.dataclass
class BatchResult:
    classes: np.ndarray  # predicted class per image
    max_probs: np.ndarray
    summary: str  # what the tutorial prints; kept, not printed


def summary(classes: np.ndarray, max_probs: np.ndarray) -> str:
    return (
        f"classes {np.array2string(classes, threshold=10**6)}\nmax prob {np.array2string(max_probs, threshold=10**6)}"
    )


def postprocess(logits: np.ndarray) -> BatchResult:
    """The tutorial's host post-processing of one batch's logits."""
    probs = softmax(logits)
    classes = probs.argmax(axis=1)
    max_probs = probs.max(axis=1)
    return BatchResult(classes, max_probs, summary(classes, max_probs))


HOST_STAMPS = ("begin", "enqueue_start", "enqueue_end", "post_start", "post_end")


class Sink:
    """Per-round record of each batch's outputs and host timestamps, filled by the
    pipeline, read by the checks."""

    def __init__(self, batch_sizes: Sequence[int], num_classes: int) -> None:
        self.logits = [np.empty((b, num_classes), np.float32) for b in batch_sizes]
        self.classes = [np.empty(b, np.int64) for b in batch_sizes]
        self.max_probs = [np.empty(b, np.float32) for b in batch_sizes]
        self.top5: list[np.ndarray | None] = [None] * len(batch_sizes)
        self.stamps = {name: np.empty(len(batch_sizes)) for name in HOST_STAMPS}
        self.post_thread = [""] * len(batch_sizes)
        self.enqueue_thread = [""] * len(batch_sizes)
        self.poison()

    def poison(self) -> None:
        for arrays in (self.logits, self.classes, self.max_probs):
            for a in arrays:
                poison_host(a)
        for top5 in self.top5:
            if top5 is not None:
                poison_host(top5)
        for stamps in self.stamps.values():
            stamps.fill(np.nan)

    def stamp(self, name: str, index: int) -> None:
        self.stamps[name][index] = time.perf_counter()

    def begin(self, index: int) -> None:
        self.stamp("begin", index)

    def store(self, index: int, host_logits: np.ndarray) -> None:
        """Post-process one batch's host logits and record it (the tutorial's per-batch host work)."""
        self.stamp("post_start", index)
        with nvtx_range("Print Result", "green"):
            result = postprocess(host_logits)
            np.copyto(self.logits[index], host_logits)  # a copy for the checks: the slot is reused
            self.classes[index][:] = result.classes
            self.max_probs[index][:] = result.max_probs
        self._done(index)

    def store_top5(self, index: int, probs: np.ndarray, classes: np.ndarray) -> None:
        """Record a batch post-processed on the GPU (top-5 probabilities and classes): the
        host only formats the summary. The logits come later (``set_logits``)."""
        self.stamp("post_start", index)
        with nvtx_range("Print Result", "green"):
            summary(classes[:, 0], probs[:, 0])
            if self.top5[index] is None:
                self.top5[index] = np.empty(classes.shape, np.int64)
            self.top5[index][:] = classes  # type: ignore[index]
            self.classes[index][:] = classes[:, 0]
            self.max_probs[index][:] = probs[:, 0]
        self._done(index)

    def _done(self, index: int) -> None:
        self.post_thread[index] = threading.current_thread().name
        self.stamp("post_end", index)

    def set_logits(self, index: int, logits: np.ndarray) -> None:
        np.copyto(self.logits[index], logits)

    def outputs(self) -> list[PipelineOutputs]:
        return [
            PipelineOutputs(lg, cl, mp, t5)
            for lg, cl, mp, t5 in zip(self.logits, self.classes, self.max_probs, self.top5)
        ]

    def latencies_ms(self) -> np.ndarray:
        return (self.stamps["post_end"] - self.stamps["begin"]) * 1e3

    def last_n_ms(self, n: int = 3) -> float:
        """The tutorial's figure: wall time from the start of batch -n to the end of the last."""
        n = min(n, len(self.stamps["begin"]))
        return float((np.nanmax(self.stamps["post_end"][-n:]) - self.stamps["begin"][-n]) * 1e3)


EVENTS = ("start", "uploaded", "compute_start", "compute_end", "download_start", "end")
# metric -> (from event, to event): CUDA-event spans per batch, in ms
SPANS = {
    "upload": ("start", "uploaded"),
    "compute": ("compute_start", "compute_end"),
    "download": ("download_start", "end"),
    "gpu_latency": ("start", "end"),
}


class BatchEvents:
    """CUDA events per batch around the upload, the engine's work and the download, and
    an origin event per round that aligns them with host timestamps (the timeline).

    ``harvest`` collects the last round: per batch, the ms of each span of ``SPANS`` and
    of the host enqueue; per round their mean (the samples compared between runs)."""

    def __init__(self, batches: int) -> None:
        self.events = {name: [Event() for _ in range(batches)] for name in EVENTS}
        self.streams: dict[str, list[str]] = {name: [""] * batches for name in EVENTS}
        self._origin_stream = Stream("origin")
        self._origin = Event()
        self._origin_host = float("nan")
        self.per_batch: dict[str, list[np.ndarray]] = {m: [] for m in (*SPANS, "enqueue", "gpu_busy")}
        self.timeline: dict[str, Any] | None = None
        self._recorded = False

    def record(self, name: str, index: int, stream: Stream) -> None:
        self.events[name][index].record(stream)
        self.streams[name][index] = stream.label

    def set_origin(self) -> None:
        """Before a round: t=0 of its timeline, on the GPU and on the host clock."""
        self._origin.record(self._origin_stream)
        self._origin.synchronize()
        self._origin_host = time.perf_counter()

    def mark_recorded(self) -> None:
        self._recorded = True

    def harvest(self, sink: Sink) -> None:
        """Collect the last round's times (all its work has completed)."""
        if not self._recorded:
            return
        self._recorded = False
        for e in self.events["end"]:
            e.synchronize()
        at = {name: np.array([self._origin.elapsed_ms(e) for e in evs]) for name, evs in self.events.items()}
        for metric, (a, b) in SPANS.items():
            self.per_batch[metric].append(at[b] - at[a])
        self.per_batch["enqueue"].append((sink.stamps["enqueue_end"] - sink.stamps["enqueue_start"]) * 1e3)
        # the GPU's busy time over the round, per batch: the figure of an approach whose batches
        # overlap on several streams (a batch's own span then holds the others' work too)
        busy = busy_ms(at["compute_start"], at["compute_end"])
        self.per_batch["gpu_busy"].append(np.full(len(at["start"]), busy / len(at["start"])))
        host = {name: (stamps - self._origin_host) * 1e3 for name, stamps in sink.stamps.items()}
        self.timeline = {
            "gpu": [
                {
                    "batch": i,
                    "span": metric,
                    "stream": self.streams[a][i],
                    "start_ms": float(at[a][i]),
                    "end_ms": float(at[b][i]),
                }
                for i in range(len(at["start"]))
                for metric, (a, b) in SPANS.items()
                if metric != "gpu_latency"
            ],
            "host": [
                {"batch": i, "span": span, "thread": thread, "start_ms": float(host[a][i]), "end_ms": float(host[b][i])}
                for i in range(len(at["start"]))
                for span, (a, b), thread in (
                    ("enqueue", ("enqueue_start", "enqueue_end"), sink.enqueue_thread[i]),
                    ("postprocess", ("post_start", "post_end"), sink.post_thread[i]),
                )
            ],
        }

    def drop_first(self, rounds: int) -> None:
        """Forget warm-up rounds."""
        for values in self.per_batch.values():
            del values[:rounds]

    def round_samples(self) -> dict[str, list[float]]:
        """Per round, the mean of each metric over the round's batches (ms per batch)."""
        return {m: [float(np.mean(r)) for r in rounds] for m, rounds in self.per_batch.items()}

    def close(self) -> None:
        for evs in self.events.values():
            for e in evs:
                e.close()
        self._origin.close()
        self._origin_stream.close()


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
        self._thread = threading.Thread(target=self._loop, name=f"trtbench-{name}", daemon=True)
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

    def submit(self, job: Callable[[], None]) -> None:
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


_UNSET = object()


class BoundContext:
    """An execution context and what it was last given: each setter reaches the context only
    when its value changes (Polygraphy's runner does the same; trtexec binds once per context
    and stream), so a pipeline whose bindings stay put makes no binding call per batch."""

    def __init__(self, context: ExecutionContext, input_name: str) -> None:
        self.context = context
        self.input_name = input_name
        self._shape: tuple[int, ...] | None = None
        self._addresses: dict[str, int] = {}
        self._consumed: object = _UNSET

    def set_input_shape(self, shape: tuple[int, ...]) -> None:
        if shape != self._shape:
            self.context.set_input_shape(self.input_name, shape)
            self._shape = shape

    def set_tensor_address(self, name: str, address: int) -> None:
        if self._addresses.get(name) != address:
            self.context.set_tensor_address(name, address)
            self._addresses[name] = address

    def set_input_consumed_event(self, event: int | None) -> None:
        if event != self._consumed:
            self.context.set_input_consumed_event(event)
            self._consumed = event


class Pipeline:
    """Base of every approach: resources made in ``__init__``, freed in ``close()``.

    ``prepare_round`` (untimed, pytest-benchmark's ``setup``) poisons the outputs,
    collects the previous round's event times and sets the next round's timeline
    origin; ``run_round`` is what is timed.
    """

    name = "pipeline"  # the approach's name in trtbench.catalogue, which declares its engine and host memory

    def __init__(self, engine: Engine, workload: Workload, shared: Pipeline | None = None) -> None:
        self.engine = engine
        self.workload = workload
        self._owned: list[Any] = []  # closed in reverse order
        if shared is None:
            self.sink = Sink([x.shape[0] for x in workload.inputs], workload.num_classes)
            self.events = self.own(BatchEvents(workload.batches))
        else:  # a part of a larger pipeline (multi_context): record into its sink and events
            self.sink, self.events = shared.sink, shared.events
        self.input_name = engine.input_names[0]
        self.output_name = OUTPUT_NAME
        self.contexts_used = 0  # execution contexts made (each holds TensorRT activation memory)
        engine.reset_peak_memory()
        device_allocations.reset_peak()

    @property
    def approach(self) -> Approach:
        return approach(self.name)

    @classmethod
    def open(cls, *args: Any, **kwargs: Any) -> Pipeline:
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

    def release(self, resource: Any) -> None:
        """Close an owned resource before the pipeline closes (a replaced graph)."""
        self._owned.remove(resource)
        resource.close()

    def new_context(self) -> ExecutionContext:
        self.contexts_used += 1
        return self.own(self.engine.create_execution_context())

    def output_shape(self, context: ExecutionContext, batch: int, name: str | None = None) -> tuple[int, ...]:
        context.set_input_shape(self.input_name, self.workload.batch_shape(batch))
        return context.get_tensor_shape(name or self.output_name)

    def device_outputs(self) -> list[DeviceBuffer]:
        """Device output buffers to poison before a round (those that persist across rounds)."""
        return []

    def host_outputs(self) -> list[np.ndarray]:
        return []

    def poison_stream(self) -> Stream | None:
        return None

    def prepare_round(self) -> None:
        self.events.harvest(self.sink)
        self.sink.poison()
        for array in self.host_outputs():
            poison_host(array)
        stream = self.poison_stream()
        if stream is not None:
            for buf in self.device_outputs():
                buf.poison(stream)
            stream.synchronize()
        self.events.set_origin()

    def compute(self, index: int, stream: Stream, launch: Callable[[], None]) -> None:
        """The engine's work for batch ``index`` on ``stream``, between the compute events;
        the host time of the call is the enqueue time."""
        self.events.record("compute_start", index, stream)
        self.sink.enqueue_thread[index] = threading.current_thread().name
        self.sink.stamp("enqueue_start", index)
        launch()
        self.sink.stamp("enqueue_end", index)
        self.events.record("compute_end", index, stream)

    def run_round(self) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """After the last round: collect its event times."""
        self.events.harvest(self.sink)

    def collect_outputs(self) -> None:
        """Before a check: fetch what the round left on the device (untimed)."""

    def check_round(self) -> Comparison:
        """The last round's outputs (every batch) against the reference."""
        self.collect_outputs()
        return compare(self.sink.outputs(), self.workload.references, self.engine.precision)

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
        engine = self.__dict__.get("engine")
        if engine is not None:
            try:
                engine.release_cached_memory()  # what the backend kept for our (now destroyed) streams
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
