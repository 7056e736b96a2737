"""Comparison with the ONNX Runtime reference, and the tolerances, in one place.

Per batch, as Polygraphy's comparator reports them: relative L2 and max / mean / median /
p99 absolute error, on the logits and on the softmax probabilities; top-1 and top-5
agreement; the error of the top-1 probability the pipeline itself produced. A run
passes when every batch is within every tolerance; the report also gives the tolerance
that would have passed (the worst value seen).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from trtbench.catalogue import OUTPUT_NAME, TOP_K


@dataclasses.dataclass(frozen=True)
class Tolerance:
    rel_l2: float  # logits: ||out - ref|| / ||ref||, per batch
    top1: float  # share of images whose top-1 class agrees with the reference's (near-ties count), per batch
    top5: float  # share of the top-5 classes that agree with the reference's top 5 (near-ties count), per batch
    prob_abs: float  # |the pipeline's top-1 probability - softmax of its own logits|, per image
    tie_margin: float  # near-tie: within this fraction of the reference logits' RMS of the boundary


# Per compute precision; fp32 allows TF32 (TensorRT's and torch's default on Ampere+).
# The default model's outputs are image-dependent (calibrated weights, procedural images),
# so relative L2 measures the part that tells images apart. Each bound is about twice the
# error measured on a GPU (README, "Correctness") and must fail every perturbation of
# tests/test_correctness.py (two images swapped, the previous batch, noise on a small share
# of the image-dependent part). A class counts as agreeing when the reference ranks it
# within ``tie_margin`` x RMS(reference logits) of the boundary (top-1, or the 5th): with
# 1000 classes many images have near-ties that rounding flips, while a wrong image's class
# sits several RMS below. The probability gate checks the pipeline's top-1 probability
# against its own logits (the error against the reference is reported).
TOLERANCES = {
    "fp32": Tolerance(rel_l2=1e-2, top1=0.99, top5=0.99, prob_abs=1e-3, tie_margin=0.10),
    "fp16": Tolerance(rel_l2=2e-2, top1=0.99, top5=0.99, prob_abs=1e-3, tie_margin=0.15),
}


@dataclasses.dataclass(frozen=True)
class ErrorStats:
    """Polygraphy-style error statistics of one output against its reference."""

    rel_l2: float
    max_abs: float
    mean_abs: float
    median_abs: float
    p99_abs: float

    @classmethod
    def of(cls, out: np.ndarray, ref: np.ndarray) -> ErrorStats:
        if out.shape != ref.shape:
            raise ValueError(f"output shape {out.shape} differs from the reference's {ref.shape}")
        diff = out.astype(np.float64) - ref.astype(np.float64)
        absolute = np.abs(diff).ravel()
        ref_norm = float(np.linalg.norm(ref.astype(np.float64)))
        return cls(
            rel_l2=float(np.linalg.norm(diff) / ref_norm) if ref_norm > 0 else float(np.linalg.norm(diff)),
            max_abs=float(absolute.max()),  # NaN propagates: an unwritten output never passes
            mean_abs=float(absolute.mean()),
            median_abs=float(np.median(absolute)),
            p99_abs=float(np.percentile(absolute, 99)),
        )

    @classmethod
    def worst(cls, stats: Sequence[ErrorStats]) -> ErrorStats:
        """Field by field, the largest over batches (NaN wins)."""

        def big(values: list[float]) -> float:
            arr = np.array(values)
            return float("nan") if np.isnan(arr).any() else float(arr.max())

        return cls(**{f.name: big([getattr(s, f.name) for s in stats]) for f in dataclasses.fields(cls)})


@dataclasses.dataclass
class PipelineOutputs:
    """What a pipeline produced for one batch: logits, and its own post-processing's
    top-1 class and probability (and top-5 classes where it computes them)."""

    logits: np.ndarray
    classes: np.ndarray
    max_probs: np.ndarray
    top5: np.ndarray | None = None


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def top_k(logits: np.ndarray, k: int = TOP_K) -> np.ndarray:
    return np.argsort(-logits, axis=1, kind="stable")[:, :k]


def agreement(classes: np.ndarray, ref_logits: np.ndarray, k: int, margin: float) -> float:
    """Share of ``classes`` ([images, j]) that the reference ranks in its top ``k``, or within
    ``margin`` x RMS(reference logits) of its k-th logit (a near-tie rounding may flip).
    An invalid class (the poison -1 of an unwritten batch) never agrees."""
    ref = ref_logits.astype(np.float64)
    boundary = np.sort(ref, axis=1)[:, -k] - margin * float(np.sqrt(np.mean(ref**2)))
    valid = (classes >= 0) & (classes < ref.shape[1])
    picked = np.take_along_axis(ref, np.where(valid, classes, 0), axis=1)
    return float(np.mean(valid & (picked >= boundary[:, None])))


@dataclasses.dataclass(frozen=True)
class BatchComparison:
    logits: ErrorStats
    probs: ErrorStats
    top1: float
    top5: float
    prob_abs: float  # worst |top-1 probability - softmax of its own logits| in the batch


def compare_batch(out: PipelineOutputs, reference: dict[str, np.ndarray], tolerance: Tolerance) -> BatchComparison:
    ref_logits = reference[OUTPUT_NAME]
    if out.classes.shape != (len(ref_logits),) or out.max_probs.shape != (len(ref_logits),):
        raise ValueError(
            f"{out.classes.shape} classes / {out.max_probs.shape} probabilities for a batch of {len(ref_logits)}"
        )
    ref_probs = softmax(ref_logits.astype(np.float64))
    logits = ErrorStats.of(out.logits, ref_logits)
    probs = ErrorStats.of(softmax(out.logits.astype(np.float64)), ref_probs)
    top5_out = out.top5 if out.top5 is not None else top_k(out.logits)
    # The post-processing's own probability (host numpy, or the graph's softmax + top-k) must
    # be that of the logits it came from: a wrong index, slot or softmax shows here, while
    # the logits' numeric drift against the reference is judged by relative L2 above.
    own = softmax(out.logits.astype(np.float64))
    valid = (out.classes >= 0) & (out.classes < own.shape[1])
    picked = np.take_along_axis(own, np.where(valid, out.classes, 0)[:, None], axis=1)[:, 0]
    prob_err = np.where(valid, np.abs(out.max_probs.astype(np.float64) - picked), np.inf)
    return BatchComparison(
        logits=logits,
        probs=probs,
        top1=agreement(out.classes[:, None], ref_logits, 1, tolerance.tie_margin),
        top5=agreement(top5_out, ref_logits, TOP_K, tolerance.tie_margin),
        prob_abs=float("nan") if np.isnan(prob_err).any() else float(prob_err.max()),
    )


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Every batch of a round against its reference; the worst batch decides."""

    batches: list[BatchComparison]
    precision: str
    tolerance: Tolerance

    @property
    def logits(self) -> ErrorStats:
        return ErrorStats.worst([b.logits for b in self.batches])

    @property
    def probs(self) -> ErrorStats:
        return ErrorStats.worst([b.probs for b in self.batches])

    @property
    def rel_l2(self) -> float:
        return self.logits.rel_l2

    @property
    def top1(self) -> float:
        return float(min(b.top1 for b in self.batches))

    @property
    def top5(self) -> float:
        return float(min(b.top5 for b in self.batches))

    @property
    def prob_abs(self) -> float:
        values = np.array([b.prob_abs for b in self.batches])
        return float("nan") if np.isnan(values).any() else float(values.max())

    @property
    def required(self) -> Tolerance:
        """The tolerance that would have passed: the worst value of each check."""
        return Tolerance(
            rel_l2=self.rel_l2,
            top1=self.top1,
            top5=self.top5,
            prob_abs=self.prob_abs,
            tie_margin=self.tolerance.tie_margin,
        )

    @property
    def worst_batch(self) -> int:
        rel = np.nan_to_num([b.logits.rel_l2 for b in self.batches], nan=np.inf)
        return int(np.argmax(rel))

    def failures(self) -> list[str]:
        """One phrase per violated tolerance (written so that NaN fails every bound)."""
        tol, failed = self.tolerance, []
        if not self.rel_l2 <= tol.rel_l2:
            failed.append(f"relative L2 {self.rel_l2:.3g} > {tol.rel_l2:g}")
        if not self.top1 >= tol.top1:
            failed.append(f"top-1 agreement {self.top1:.2%} < {tol.top1:.0%}")
        if not self.top5 >= tol.top5:
            failed.append(f"top-5 agreement {self.top5:.2%} < {tol.top5:.0%}")
        if not self.prob_abs <= tol.prob_abs:
            failed.append(f"top-1 probability error {self.prob_abs:.3g} > {tol.prob_abs:g}")
        return failed

    @property
    def passed(self) -> bool:
        return not self.failures()

    def describe(self) -> str:
        worst = self.batches[self.worst_batch]
        verdict = "; ".join(self.failures()) or "within every tolerance"
        return (
            f"{verdict} ({self.precision}; worst batch {self.worst_batch} of {len(self.batches)}: "
            f"relative L2 {worst.logits.rel_l2:.3g}, max |err| {worst.logits.max_abs:.3g}, "
            f"top-1 {worst.top1:.2%}, top-5 {worst.top5:.2%}; would pass with rel. L2 <= {self.rel_l2:.3g}, "
            f"top-1 >= {self.top1:.2%}, top-5 >= {self.top5:.2%}, prob. error <= {self.prob_abs:.3g})"
        )

    def as_extra_info(self) -> dict[str, Any]:
        return {
            # flat figures (report, README) ...
            "rel_l2_error": self.rel_l2,
            "max_abs_error": self.logits.max_abs,
            "mean_abs_error": self.logits.mean_abs,
            "top1_agreement": self.top1,
            "top5_agreement": self.top5,
            # ... and everything, as Polygraphy reports it
            "errors": {
                "precision": self.precision,
                "logits": dataclasses.asdict(self.logits),
                "probabilities": dataclasses.asdict(self.probs),
                "top1_probability_abs": self.prob_abs,
                "tolerance": dataclasses.asdict(self.tolerance),
                "would_pass_with": dataclasses.asdict(self.required),
                "worst_batch": self.worst_batch,
                "per_batch": [
                    {"rel_l2": b.logits.rel_l2, "max_abs": b.logits.max_abs, "top1": b.top1, "top5": b.top5}
                    for b in self.batches
                ],
            },
        }


def compare(
    outputs: Sequence[PipelineOutputs], references: Sequence[dict[str, np.ndarray]], precision: str
) -> Comparison:
    """Every batch's outputs against its reference. The classes checked are the ones the
    pipeline's own post-processing produced, so a batch post-processed from another
    batch's buffer fails even if the logits copy is right."""
    if len(outputs) != len(references) or not outputs:
        raise ValueError(f"{len(outputs)} batches of outputs for {len(references)} references")
    tolerance = TOLERANCES[precision]
    return Comparison([compare_batch(o, r, tolerance) for o, r in zip(outputs, references)], precision, tolerance)
