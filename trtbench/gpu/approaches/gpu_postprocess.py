"""Approach 10 (beyond the tutorial), gpu_postprocess: softmax and top-5 on the GPU.

The engine's graph gains two outputs (TensorRT: the ONNX graph computes them; torch: the
module does): the top-5 probabilities and classes of each image. Only those are
downloaded (40 bytes an image instead of 4 kB of logits), and the host merely formats
the summary. Stacks on cuda_graph (the graph includes the post-processing).

The logits stay checked: after each batch's graph, a device-to-device copy puts its
logits into a per-round check buffer (512 kB a batch of 128, a few microseconds,
between the compute and download events); the check downloads it after the round,
outside the timed region. The classes and probabilities checked are the ones the GPU
produced and the host received.
"""

from __future__ import annotations

import numpy as np

from trtbench.catalogue import TOP5_CLASS, TOP5_PROB
from trtbench.gpu.approaches.cuda_graph import CudaGraphPipeline
from trtbench.gpu.approaches.overlap import SLOTS
from trtbench.gpu.cuda import DeviceBuffer, PinnedBuffer


class GpuPostprocessPipeline(CudaGraphPipeline):
    name = "gpu_postprocess"

    def bind_outputs(self, batch: int) -> None:
        out_shape = self.output_shape_for(batch)
        top_shape = self.output_shape_for(batch, TOP5_PROB)
        self.d_output = self.own(DeviceBuffer(out_shape))
        self.d_probs = self.own(DeviceBuffer(top_shape, self.engine.tensor_dtype(TOP5_PROB)))
        self.d_classes = self.own(DeviceBuffer(top_shape, self.engine.tensor_dtype(TOP5_CLASS)))
        self.h_probs = [self.own(PinnedBuffer(top_shape, self.d_probs.dtype)).array for _ in range(SLOTS)]
        self.h_classes = [self.own(PinnedBuffer(top_shape, self.d_classes.dtype)).array for _ in range(SLOTS)]
        self.h_outputs = [*self.h_probs, *self.h_classes]
        # every batch's logits, kept on the device for the check
        self.d_checked = self.own(DeviceBuffer((self.workload.batches, *out_shape)))
        self.output_addresses = {
            self.output_name: self.d_output.ptr,
            TOP5_PROB: self.d_probs.ptr,
            TOP5_CLASS: self.d_classes.ptr,
        }
        self.bind_context_outputs()

    def device_outputs(self) -> list[DeviceBuffer]:
        return [self.d_output, self.d_probs, self.d_classes, self.d_checked]

    def download(self, i: int, out_slot: int, batch: int) -> None:
        stream = self.compute_stream
        logits_bytes = batch * self.workload.num_classes * 4
        self.d_output.copy_into(self.d_checked, stream, logits_bytes, i * self.d_output.nbytes)
        self.events.record("download_start", i, stream)
        self.d_probs.download(self.h_probs[out_slot][:batch], stream)
        self.d_classes.download(self.h_classes[out_slot][:batch], stream)
        self.events.record("end", i, stream)

    def postprocess(self, i: int, out_slot: int, batch: int) -> None:
        self.output_ready[out_slot].synchronize()
        self.sink.store_top5(i, self.h_probs[out_slot][:batch], self.h_classes[out_slot][:batch])

    def collect_outputs(self) -> None:
        checked = np.empty(self.d_checked.shape, np.float32)
        self.d_checked.download(checked, self.compute_stream)
        self.compute_stream.synchronize()
        for i, x in enumerate(self.workload.inputs):
            self.sink.set_logits(i, checked[i, : x.shape[0]])


Approach = GpuPostprocessPipeline
