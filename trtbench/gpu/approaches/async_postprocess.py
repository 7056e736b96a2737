"""Approach 6, async_postprocess: host post-processing in a worker thread.

The main thread enqueues batch i+1 while the worker post-processes batch i. The
tutorial's version let the next batch's download overwrite the host buffer the worker
was reading; here the main thread acquires an output slot (of two) before it
downloads into it, and the worker releases the slot only after it has post-processed
and recorded the batch, so every batch is read exactly as it was written.
"""

from __future__ import annotations

from trtbench.gpu.approaches.overlap import OverlapPipeline
from trtbench.gpu.pipeline import WorkerThread


class AsyncPostprocessPipeline(OverlapPipeline):
    name = "async_postprocess"

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.worker = self.own(WorkerThread(f"{self.name}-postprocess"))

    def handle_output(self, i: int, out_slot: int, batch: int) -> None:
        # the job releases the slot even when it fails (OverlapPipeline.handle_output)
        self.worker.submit(lambda: OverlapPipeline.handle_output(self, i, out_slot, batch))

    def drain(self) -> None:
        self.worker.drain()


Approach = AsyncPostprocessPipeline
