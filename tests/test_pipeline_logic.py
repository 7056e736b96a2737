"""Host-side pipeline logic that needs no GPU: double-buffered output slots, the worker
thread, post-processing, the sink's poisoning."""

import threading
import time

import numpy as np
import pytest

from trtbench.correctness import softmax
from trtbench.gpu.pipeline import Pipeline, Sink, SlotRing, WorkerThread, Workload, poison_host, postprocess


def test_slot_ring_never_lets_a_writer_overwrite_a_slot_being_read():
    """Producer writes batch i into slot i % 2, consumer reads it slowly: every batch read
    back must be the one written (the tutorial's race would read batch i+2's data)."""
    ring, slots, seen = SlotRing(2), [None, None], []
    worker = WorkerThread("reader")

    def read(i, slot):
        time.sleep(0.002)  # slow post-processing: the writer runs ahead
        seen.append((i, slots[slot]))
        ring.release(slot)

    try:
        for i in range(50):
            slot = ring.slot_for(i)
            ring.acquire(slot)
            slots[slot] = i  # "download batch i into the slot"
            worker.submit(lambda i=i, slot=slot: read(i, slot))
        worker.drain()
    finally:
        worker.close()
    assert seen == [(i, i) for i in range(50)]


def test_without_the_ring_the_race_is_real():
    """Control: the same schedule with a single unguarded buffer reads wrong batches."""
    slot, seen = [None], []
    worker = WorkerThread("reader")

    def read(i):
        time.sleep(0.002)
        seen.append((i, slot[0]))

    try:
        for i in range(20):
            slot[0] = i
            worker.submit(lambda i=i: read(i))
        worker.drain()
    finally:
        worker.close()
    assert any(i != value for i, value in seen)


def test_slot_ring_acquire_times_out_when_never_released():
    ring = SlotRing(1)
    ring.acquire(0)
    with pytest.raises(TimeoutError, match="slot 0"):
        ring.acquire(0, timeout=0.05)


def test_worker_reraises_first_error_and_keeps_running_later_jobs():
    worker = WorkerThread("w")
    ran = []
    try:
        worker.submit(lambda: (_ for _ in ()).throw(ValueError("first")))
        worker.submit(lambda: ran.append(1))  # must still run: it may release a slot
        with pytest.raises(ValueError, match="first"):
            worker.drain()
        assert ran == [1]
        worker.drain()  # the error is reported once
    finally:
        worker.close()
    assert not any(t.name == "w" and t.is_alive() for t in threading.enumerate())


def test_postprocess_matches_numpy():
    logits = np.random.default_rng(0).standard_normal((8, 1000)).astype(np.float32)
    result = postprocess(logits)
    np.testing.assert_array_equal(result.classes, logits.argmax(axis=1))
    np.testing.assert_allclose(softmax(logits).sum(axis=1), 1.0, rtol=1e-5)
    assert result.summary.startswith("classes")


def test_sink_poison_and_store():
    sink = Sink([4, 2], 1000)
    assert np.isnan(sink.logits[0]).all() and (sink.classes[1] == -1).all() and np.isnan(sink.max_probs[0]).all()
    logits = np.arange(8000, dtype=np.float32).reshape(8, 1000)[:4]
    sink.begin(0)
    sink.store(0, logits)
    np.testing.assert_array_equal(sink.logits[0], logits)
    assert (sink.classes[0] == 999).all() and sink.latencies_ms()[0] >= 0
    assert np.isnan(sink.latencies_ms()[1])  # batch 1 never ran
    outputs = sink.outputs()
    assert outputs[0].top5 is None and (outputs[0].max_probs > 0.5).all()
    sink.poison()
    assert np.isnan(sink.logits[0]).all()


def test_sink_records_gpu_post_processed_batches():
    sink = Sink([3], 10)
    probs = np.array([[0.5, 0.2, 0.1, 0.1, 0.1]] * 3, np.float32)
    classes = np.array([[7, 1, 2, 3, 4]] * 3, np.int32)
    sink.begin(0)
    sink.store_top5(0, probs, classes)
    assert (
        (sink.classes[0] == 7).all()
        and (sink.max_probs[0] == 0.5).all()
        and sink.top5[0].tolist()[0] == [7, 1, 2, 3, 4]
    )
    assert np.isnan(sink.logits[0]).all()  # the logits come from the device check buffer later
    sink.set_logits(0, np.ones((3, 10), np.float32))
    assert (sink.outputs()[0].logits == 1).all()
    sink.poison()
    assert (sink.top5[0] == -1).all() and sink.post_thread[0] == "MainThread"


def test_host_poison_is_nan_for_floats_and_minus_one_for_integers():
    floats, ints, small = np.zeros(3, np.float32), np.zeros(3, np.int32), np.zeros(3, np.float16)
    for a in (floats, ints, small):
        poison_host(a)
    assert np.isnan(floats).all() and (ints == -1).all() and np.isnan(small).all()


def test_workload_needs_matching_references():
    with pytest.raises(ValueError):
        Workload([np.zeros((1, 3, 224, 224), np.float32)], [], "pageable")


class _Resource:
    def __init__(self, log, name):
        self.log, self.name = log, name

    def close(self):
        self.log.append(self.name)


def test_pipeline_that_fails_while_being_built_releases_what_it_made():
    log = []

    class Failing(Pipeline):
        def __init__(self):  # stands for an approach whose third allocation fails
            self._owned = []
            self.own(_Resource(log, "stream"))
            self.own(_Resource(log, "buffer"))
            raise MemoryError("cudaMalloc failed")

    with pytest.raises(MemoryError):
        Failing.open()
    assert log == ["buffer", "stream"]  # released, in reverse order


def test_pipeline_close_releases_everything_and_reports_the_first_error():
    log = []

    class Bad(_Resource):
        def close(self):
            super().close()
            raise RuntimeError("cudaFree failed")

    class Owner(Pipeline):
        def __init__(self):
            self._owned = []
            self.own(_Resource(log, "a"))
            self.own(Bad(log, "b"))
            self.own(_Resource(log, "c"))

    owner = Owner.open()
    with pytest.raises(RuntimeError, match="cudaFree failed"):
        owner.close()
    assert log == ["c", "b", "a"]
