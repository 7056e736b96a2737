"""Approach 4, fp16: the fp16 engine (TensorRT 10 and 11: a strongly typed network parsed
from the fp16 ONNX; torch: fp16 weights) with fp32 inputs and outputs.

Keeps pinned memory and buffer reuse; checked against the fp16 tolerances.
"""

from trtbench.gpu.approaches.pinned_memory import PinnedMemoryPipeline


class Fp16Pipeline(PinnedMemoryPipeline):
    name = "fp16"


Approach = Fp16Pipeline
