"""Approach 9, multi_profile (TensorRT only): small batches and ``--batch-size`` B
alternating, on the two-profile engine (profiles derived from B; at B = 128 the
tutorial's [1,16,32] and [64,128,192] with batches of 16 and 128; one context per
profile, each selecting its profile once) against the same workload on the single
wide-profile engine (one context, input shape changed per batch).

A profile tuned for the small batch should make it faster; the ordering check
compares the engine's GPU time of the small half. PyTorch has no optimization profiles,
so the approach is skipped there with that reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trtbench.engines import profile_for_batch
from trtbench.gpu.approaches.reuse_buffers import SerialPipeline
from trtbench.gpu.backends.base import Engine, UnsupportedApproach
from trtbench.gpu.cuda import DeviceBuffer, Stream
from trtbench.gpu.pipeline import Pipeline, Workload

VARIANTS = ("two_profiles", "one_profile")


class MultiProfilePipeline(SerialPipeline):
    name = "multi_profile"

    def __init__(self, engine: Engine, workload: Workload, variant: str = "two_profiles") -> None:
        if engine.backend != "tensorrt":
            raise UnsupportedApproach(f"{engine.backend} has no optimization profiles")
        if variant not in VARIANTS:
            raise ValueError(f"multi_profile variant {variant!r} is not one of {VARIANTS}")
        Pipeline.__init__(self, engine, workload)
        self.variant = variant
        self.stream = self.own(Stream("stream"))
        self.batch_sizes = sorted({x.shape[0] for x in workload.inputs})
        if variant == "two_profiles":  # one context per profile, each selecting it once
            contexts = []
            for profile in range(engine.num_profiles):
                contexts.append(self.new_context())
                contexts[-1].set_optimization_profile(profile, self.stream)
            ranges = [engine.profile_batch_range(p) for p in range(engine.num_profiles)]
            self.by_batch = {b: contexts[profile_for_batch(b, ranges)] for b in self.batch_sizes}
        else:
            ctx = self.new_context()
            self.by_batch = {b: ctx for b in self.batch_sizes}
        self._allocate(self.by_batch[workload.max_batch])
        self.stream.synchronize()

    def infer_once(self, i: int, x: np.ndarray, d_in: DeviceBuffer, d_out: DeviceBuffer, h_out: np.ndarray) -> None:
        self.context = self.by_batch[x.shape[0]]
        super().infer_once(i, x, d_in, d_out, h_out)

    def extra_metrics(self) -> dict[str, Any]:
        compute = np.array(self.events.per_batch["compute"])  # rounds x batches: the engine's GPU time
        sizes = np.array([x.shape[0] for x in self.workload.inputs])
        small, large = min(self.batch_sizes), max(self.batch_sizes)
        return {
            "variant": self.variant,
            "batch_small": small,
            "batch_small_gpu_ms": float(np.median(compute[:, sizes == small])),
            "batch_large": large,
            "batch_large_gpu_ms": float(np.median(compute[:, sizes == large])),
        }


Approach = MultiProfilePipeline
