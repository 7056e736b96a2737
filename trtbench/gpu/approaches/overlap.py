"""Approach 5, overlap: the next batch's upload runs while the current batch computes.

A copy stream and a compute stream. Inputs are double-buffered on the device: batch
i+1 is uploaded into the other input slot on the copy stream as soon as the batch that
last used that slot has consumed it (TensorRT: ``set_input_consumed_event``; torch:
after the input's cast), and the compute stream waits for the upload's event. Outputs
go to two pinned host slots (a :class:`SlotRing`). Keeps fp16 and pinned memory; the
host post-processes each batch on the main thread.

Each input slot has an execution context of its own, bound once to its slot's input, the
outputs and its slot's input-consumed event (trtexec binds once per context and stream), so
a round makes no binding call unless a batch size changes. multi_context, whose point is
its number of contexts, runs one context per part: its input address and event then change
every batch and are bound only when they change. Binding always happens before the compute
span, whose events and enqueue time hold the engine's launch alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from trtbench.gpu.backends.base import Engine, ExecutionContext
from trtbench.gpu.cuda import DeviceBuffer, Event, PinnedBuffer, Stream
from trtbench.gpu.pipeline import BoundContext, Pipeline, SlotRing, Workload, nvtx_range

SLOTS = 2


class OverlapPipeline(Pipeline):
    name = "overlap"

    def __init__(
        self,
        engine: Engine,
        workload: Workload,
        indices: Sequence[int] | None = None,
        shared: Pipeline | None = None,
        label: str = "",
        context_per_slot: bool = True,
    ) -> None:
        super().__init__(engine, workload, shared)
        # multi_context runs one of these per context over a share of the batches
        self.indices = list(range(workload.batches)) if indices is None else list(indices)
        self.bound = [
            BoundContext(self.new_context(), self.input_name) for _ in range(SLOTS if context_per_slot else 1)
        ]
        self.context: ExecutionContext = self.bound[0].context  # for shape queries
        self.copy_stream = self.own(Stream(f"{label}copy"))
        self.compute_stream = self.own(Stream(f"{label}compute"))
        in_shape = workload.batch_shape(workload.max_batch)
        self.d_inputs = [self.own(DeviceBuffer(in_shape, engine.tensor_dtype(self.input_name))) for _ in range(SLOTS)]
        self.bind_outputs(workload.max_batch)
        self.uploaded = [self.own(Event(timing=False)) for _ in range(SLOTS)]
        self.consumed = [self.own(Event(timing=False)) for _ in range(SLOTS)]
        self.output_ready = [self.own(Event(timing=False)) for _ in range(SLOTS)]
        self.ring = SlotRing(SLOTS)
        for event in self.consumed:  # a slot never used counts as consumed
            event.record(self.compute_stream)
        for slot in range(SLOTS):  # bound now: a round binds nothing unless a batch size changes
            self.bind_input(slot, workload.max_batch)

    def bound_for(self, slot: int) -> BoundContext:
        return self.bound[slot % len(self.bound)]

    def output_shape_for(self, batch: int, name: str | None = None) -> tuple[int, ...]:
        self.bound[0].set_input_shape(self.workload.batch_shape(batch))
        return self.context.get_tensor_shape(name or self.output_name)

    def bind_outputs(self, batch: int) -> None:
        """Device output (logits), bound once on every context, and its two pinned host slots."""
        out_shape = self.output_shape_for(batch)
        self.d_output = self.own(DeviceBuffer(out_shape))
        self.h_outputs = [self.own(PinnedBuffer(out_shape)).array for _ in range(SLOTS)]
        self.output_addresses = {self.output_name: self.d_output.ptr}
        self.bind_context_outputs()

    def bind_context_outputs(self) -> None:
        for bound in self.bound:
            for name, address in self.output_addresses.items():
                bound.set_tensor_address(name, address)

    def bind_input(self, slot: int, batch: int) -> None:
        """The slot's context gets the batch's shape, the slot's input and its consumed event,
        each only if it changed."""
        bound = self.bound_for(slot)
        bound.set_input_shape(self.workload.batch_shape(batch))
        bound.set_tensor_address(self.input_name, self.d_inputs[slot].ptr)
        bound.set_input_consumed_event(self.consumed[slot].ptr)

    def bind(self, slot: int, batch: int) -> None:
        """Before the compute span: what ``launch`` needs for input slot ``slot``."""
        self.bind_input(slot, batch)

    def device_outputs(self) -> list[DeviceBuffer]:
        return [self.d_output]

    def host_outputs(self) -> list[np.ndarray]:
        return self.h_outputs

    def poison_stream(self) -> Stream:
        return self.compute_stream

    def _upload(self, position: int) -> None:
        i = self.indices[position]
        slot = position % SLOTS
        self.copy_stream.wait(self.consumed[slot])  # the batch that last used this slot is done with it
        self.events.record("start", i, self.copy_stream)
        self.d_inputs[slot].upload(self.workload.inputs[i], self.copy_stream)
        self.events.record("uploaded", i, self.copy_stream)
        self.uploaded[slot].record(self.copy_stream)

    def launch(self, slot: int, batch: int) -> None:
        """Run the engine on input slot ``slot`` (bound by ``bind``); records ``consumed[slot]``
        once the input is free."""
        self.bound_for(slot).context.enqueue(self.compute_stream)

    def run_round(self) -> None:
        if not self.indices:
            return
        self._upload(0)
        for position, i in enumerate(self.indices):
            with nvtx_range("infer"):
                self.sink.begin(i)
                slot = position % SLOTS
                batch = self.workload.inputs[i].shape[0]
                self.compute_stream.wait(self.uploaded[slot])
                self.bind(slot, batch)
                self.compute(i, self.compute_stream, lambda slot=slot, batch=batch: self.launch(slot, batch))
                if position + 1 < len(self.indices):
                    self._upload(position + 1)
                out_slot = self.ring.slot_for(position)
                self.ring.acquire(out_slot)  # its previous batch has been post-processed
                self.download(i, out_slot, batch)
                self.output_ready[out_slot].record(self.compute_stream)
                self.handle_output(i, out_slot, batch)
        self.drain()
        self.events.mark_recorded()

    def download(self, i: int, out_slot: int, batch: int) -> None:
        """Batch i's outputs into host slot ``out_slot``, between the download events."""
        self.events.record("download_start", i, self.compute_stream)
        self.d_output.download(self.h_outputs[out_slot][:batch], self.compute_stream)
        self.events.record("end", i, self.compute_stream)

    def postprocess(self, i: int, out_slot: int, batch: int) -> None:
        """Batch i's host post-processing, once its download is complete."""
        self.output_ready[out_slot].synchronize()
        self.sink.store(i, self.h_outputs[out_slot][:batch])

    def handle_output(self, i: int, out_slot: int, batch: int) -> None:
        """Post-process batch i (here: on this thread) and free its host slot."""
        try:
            self.postprocess(i, out_slot, batch)
        finally:
            self.ring.release(out_slot)

    def drain(self) -> None:
        """Wait until every batch of the round has been post-processed."""


Approach = OverlapPipeline
