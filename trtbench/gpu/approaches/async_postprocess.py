"""Approach 6, async_postprocess: host post-processing in a worker thread.

The main thread enqueues batch i+1 while the worker post-processes batch i. The
tutorial's version let the next batch's download overwrite the host buffer the worker
was reading; here the main thread acquires an output slot (of two) before it
downloads into it, and the worker releases the slot only after it has post-processed
and recorded the batch, so every batch is read exactly as it was written.
"""

from __future__ import annotations

import numpy as np

from trtbench.gpu.approaches.overlap import OverlapPipeline
from trtbench.gpu.pipeline import WorkerThread, nvtx_range


class AsyncPostprocessPipeline(OverlapPipeline):
    name = "async_postprocess"

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.worker = self.own(WorkerThread(f"{self.name}-postprocess"))

    def handle_output(self, i: int, out_slot: int, host: np.ndarray) -> None:
        def job() -> None:
            try:
                self.output_ready[out_slot].synchronize()
                with nvtx_range("Print Result", "green"):
                    self.sink.store(i, host)
            finally:
                self.ring.release(out_slot)

        self.worker.submit(job)

    def drain(self) -> None:
        self.worker.drain()


Approach = AsyncPostprocessPipeline
