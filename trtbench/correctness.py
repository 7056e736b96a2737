"""Comparison with the ONNX Runtime reference, and the tolerances, in one place."""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

# Per compute precision. fp32 allows TF32 (TensorRT's and torch's default on Ampere+).
TOLERANCES = {
    "fp32": {"rel_l2": 2e-3, "top1": 0.99},  # measured on the H100 (torch, TF32): 4.8e-4
    "fp16": {"rel_l2": 1e-2, "top1": 0.97},  # measured on the H100 (torch): 5.5e-4
}


@dataclasses.dataclass(frozen=True)
class Comparison:
    rel_l2: float  # worst batch: ||out - ref|| / ||ref||
    max_abs: float  # worst element over all batches
    mean_abs: float
    top1: float  # worst batch: share of images whose predicted class equals the reference's
    batches: int
    tolerance_rel_l2: float
    tolerance_top1: float
    worst_batch: int

    @property
    def passed(self) -> bool:
        # written so that NaN (an output never written) fails
        return bool(self.rel_l2 <= self.tolerance_rel_l2 and self.top1 >= self.tolerance_top1)

    def describe(self) -> str:
        return (
            f"relative L2 {self.rel_l2:.3g} (tolerance {self.tolerance_rel_l2:g}), "
            f"top-1 agreement {self.top1:.2%} (tolerance {self.tolerance_top1:.0%}), "
            f"max |err| {self.max_abs:.3g}, mean |err| {self.mean_abs:.3g}, worst batch {self.worst_batch} "
            f"of {self.batches}"
        )

    def as_extra_info(self) -> dict[str, float]:
        return {
            "rel_l2_error": self.rel_l2,
            "max_abs_error": self.max_abs,
            "mean_abs_error": self.mean_abs,
            "top1_agreement": self.top1,
            "tolerance_rel_l2": self.tolerance_rel_l2,
            "tolerance_top1": self.tolerance_top1,
        }


def compare(
    outputs: Sequence[np.ndarray],
    classes: Sequence[np.ndarray],
    references: Sequence[np.ndarray],
    precision: str,
) -> Comparison:
    """Every batch's logits against its reference, and the classes the pipeline's own
    post-processing produced against the reference's top-1 (so a batch post-processed
    from another batch's output fails even if the logits copy is right)."""
    if not len(outputs) == len(classes) == len(references):
        raise ValueError(f"{len(outputs)} outputs, {len(classes)} class arrays, {len(references)} references")
    tol = TOLERANCES[precision]
    rel, top1, max_abs, abs_sum, count = [], [], 0.0, 0.0, 0
    for out, cls, ref in zip(outputs, classes, references):
        if out.shape != ref.shape:
            raise ValueError(f"output shape {out.shape} differs from the reference's {ref.shape}")
        diff = np.abs(out.astype(np.float64) - ref)
        rel.append(float(np.linalg.norm(out.astype(np.float64) - ref) / np.linalg.norm(ref)))
        top1.append(float(np.mean(cls == ref.argmax(axis=1))))
        max_abs = max(max_abs, float(diff.max())) if not np.isnan(diff).any() else float("nan")
        abs_sum += float(diff.sum())
        count += diff.size
    worst = int(np.argmax(np.nan_to_num(rel, nan=np.inf)))
    return Comparison(
        rel_l2=float(np.max(rel)) if not np.isnan(rel).any() else float("nan"),
        max_abs=max_abs,
        mean_abs=abs_sum / count,
        top1=float(np.min(top1)),
        batches=len(outputs),
        tolerance_rel_l2=tol["rel_l2"],
        tolerance_top1=tol["top1"],
        worst_batch=worst,
    )
