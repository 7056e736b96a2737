"""Approach 2, reuse_buffers: device buffers allocated once and reused for every batch.

Otherwise the baseline's serial pipeline: upload, infer, download, synchronize, then
host post-processing, one batch after the other on one stream.
"""

from __future__ import annotations

import numpy as np

from trtbench.gpu.backends.base import Engine, ExecutionContext
from trtbench.gpu.cuda import DeviceBuffer, PinnedBuffer, Stream
from trtbench.gpu.pipeline import Pipeline, Workload, nvtx_range


class SerialPipeline(Pipeline):
    name = "reuse_buffers"

    def __init__(self, engine: Engine, workload: Workload) -> None:
        super().__init__(engine, workload)
        self.stream = self.own(Stream("stream"))
        self._allocate(self.new_context())

    def _allocate(self, context: ExecutionContext) -> None:
        """``context`` and the buffers of the largest batch, in the engine's input dtype."""
        self.context = context
        out_shape = self.output_shape(context, self.workload.max_batch)
        self.d_input = self.own(
            DeviceBuffer(self.workload.batch_shape(self.workload.max_batch), self.engine.tensor_dtype(self.input_name))
        )
        self.d_output = self.own(DeviceBuffer(out_shape))
        self.h_output = self._host_output(out_shape)

    def _host_output(self, shape: tuple[int, ...]) -> np.ndarray:
        if self.approach.host_memory == "pinned":
            return self.own(PinnedBuffer(shape)).array
        return np.empty(shape, np.float32)

    def device_outputs(self) -> list[DeviceBuffer]:
        return [self.d_output]

    def host_outputs(self) -> list[np.ndarray]:
        return [self.h_output]

    def poison_stream(self) -> Stream:
        return self.stream

    def run_round(self) -> None:
        for i, x in enumerate(self.workload.inputs):
            with nvtx_range("infer"):
                self.sink.begin(i)
                self.infer_once(i, x, self.d_input, self.d_output, self.h_output)
        self.events.mark_recorded()

    def infer_once(self, i: int, x: np.ndarray, d_in: DeviceBuffer, d_out: DeviceBuffer, h_out: np.ndarray) -> None:
        batch = x.shape[0]
        ctx, stream, ev = self.context, self.stream, self.events
        ctx.set_input_shape(self.input_name, x.shape)
        ctx.set_tensor_address(self.input_name, d_in.ptr)
        ctx.set_tensor_address(self.output_name, d_out.ptr)
        host_out = h_out[:batch]
        ev.record("start", i, stream)
        d_in.upload(x, stream)
        ev.record("uploaded", i, stream)
        self.compute(i, stream, lambda: ctx.enqueue(stream))
        ev.record("download_start", i, stream)
        d_out.download(host_out, stream)
        ev.record("end", i, stream)
        stream.synchronize()
        self.sink.store(i, host_out)


Approach = SerialPipeline
