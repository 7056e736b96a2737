"""Approach 11 (beyond the tutorial), uint8_input: uint8 images in, normalised in the engine.

The input is what an image decoder hands over: uint8, NHWC (height, width, RGB
interleaved), a quarter of the fp32 bytes (19 MB instead of 77 MB a batch of 128 at
224x224). The engine's graph casts, transposes and normalises it (x / 127.5 - 1, the
tutorial's normalisation) before the network; the reference is ONNX Runtime on the
same uint8 images and the same graph. Stacks on gpu_postprocess.
"""

from trtbench.gpu.approaches.gpu_postprocess import GpuPostprocessPipeline


class Uint8InputPipeline(GpuPostprocessPipeline):
    name = "uint8_input"


Approach = Uint8InputPipeline
