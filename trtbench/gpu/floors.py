"""What no pipeline can beat, measured alone on this GPU: the upload of one batch's bytes,
and the engine's work on one batch replayed from a CUDA graph (CUDA events, medians).

An approach's floor is the larger of the two for its input and its engine: the time per
batch of a pipeline whose copies and compute overlap perfectly.
"""

from __future__ import annotations

import contextlib

import numpy as np

from trtbench.gpu.backends.base import Engine
from trtbench.gpu.cuda import DeviceBuffer, Event, Stream

REPEATS = 20


def _median_ms(stream: Stream, work, repeats: int = REPEATS) -> float:  # type: ignore[no-untyped-def]
    with Event() as start, Event() as end:
        times = []
        work()  # warm-up
        for _ in range(repeats):
            start.record(stream)
            work()
            end.record(stream)
            end.synchronize()
            times.append(start.elapsed_ms(end))
    return float(np.median(times))


def upload_ms(host: np.ndarray) -> float:
    """Host-to-device time of ``host`` (pinned or pageable, as given)."""
    with Stream("floor") as stream, DeviceBuffer(host.shape, host.dtype) as device:
        return _median_ms(stream, lambda: device.upload(host, stream))


def compute_ms(engine: Engine, batch: np.ndarray) -> tuple[float, bool]:
    """The engine's work on one batch (real data): (median ms, whether it was a graph replay)."""
    try:
        with contextlib.ExitStack() as stack:
            stream = stack.enter_context(Stream("floor"))
            context = stack.enter_context(engine.create_execution_context())
            name = engine.input_names[0]
            context.set_input_shape(name, batch.shape)
            d_in = stack.enter_context(DeviceBuffer(batch.shape, engine.tensor_dtype(name)))
            d_in.upload(batch, stream)
            context.set_tensor_address(name, d_in.ptr)
            for out in engine.output_names:
                buf = stack.enter_context(DeviceBuffer(context.get_tensor_shape(out), engine.tensor_dtype(out)))
                context.set_tensor_address(out, buf.ptr)
            context.enqueue(stream)
            stream.synchronize()
            try:
                graph = stack.enter_context(context.capture_graph(stream))
            except Exception:
                return _median_ms(stream, lambda: context.enqueue(stream)), False
            return _median_ms(stream, lambda: graph.launch(stream)), True
    finally:  # also when capture failed or anything raised: the floor's stream caches go too
        engine.release_cached_memory()
