"""Approach 3, pinned_memory: inputs and outputs in page-locked host memory.

Keeps buffer reuse. Uploads from pinned memory run at full PCIe speed and are truly
asynchronous; the inputs come from the session's pinned copies of the batches.
"""

from trtbench.gpu.approaches.reuse_buffers import SerialPipeline


class PinnedMemoryPipeline(SerialPipeline):
    name = "pinned_memory"


Approach = PinnedMemoryPipeline
