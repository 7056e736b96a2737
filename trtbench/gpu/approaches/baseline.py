"""Approach 1, baseline (the tutorial's 1_baseline.py).

Per batch: allocate device input and output, upload from pageable host memory, run,
download, synchronize, host softmax/argmax, free. One stream of our own (never the
legacy default stream); every CUDA call checked.
"""

from __future__ import annotations

import numpy as np

from trtbench.gpu.approaches.reuse_buffers import SerialPipeline
from trtbench.gpu.backends.base import Engine
from trtbench.gpu.cuda import DeviceBuffer, Stream
from trtbench.gpu.pipeline import Pipeline, Workload, nvtx_range


class BaselinePipeline(SerialPipeline):
    name = "baseline"

    def __init__(self, engine: Engine, workload: Workload) -> None:
        Pipeline.__init__(self, engine, workload)  # no persistent buffers: they are per batch
        self.context = self.new_context()
        self.stream = self.own(Stream("stream"))

    def device_outputs(self) -> list[DeviceBuffer]:
        return []

    def host_outputs(self) -> list[np.ndarray]:
        return []

    def run_round(self) -> None:
        input_dtype = self.engine.tensor_dtype(self.input_name)
        for i, x in enumerate(self.workload.inputs):
            with nvtx_range("infer"):
                self.sink.begin(i)
                out_shape = self.output_shape(self.context, x.shape[0])
                with DeviceBuffer(x.shape, input_dtype) as d_in, DeviceBuffer(out_shape) as d_out:
                    d_out.poison(self.stream)  # fresh memory is not NaN by itself
                    h_out = np.full(out_shape, np.nan, np.float32)
                    self.infer_once(i, x, d_in, d_out, h_out)
        self.events.mark_recorded()


Approach = BaselinePipeline
