"""The figures a test saves, computed from what its rounds measured (pure numpy).

Per metric: per-round samples (the mean over a round's batches, ms per batch: what runs
are compared on) and per-batch values (their percentiles). The wall time is per round, so
it has per-round samples only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from trtbench.stats import summarize


def timing_figures(
    samples: dict[str, list[float]], per_batch: dict[str, np.ndarray], images_per_round: int, batches: int
) -> dict[str, Any]:
    """Medians, IQR, img/s and the trtexec-style breakdown of a test's timed rounds."""
    wall = np.asarray(samples["wall"], np.float64)
    q1, q3 = np.percentile(wall, [25, 75])
    median = float(np.median(wall))
    breakdown = {m: {**summarize(v), "cv": summarize(samples[m])["cv"]} for m, v in per_batch.items() if len(v)}
    breakdown["wall"] = summarize(wall)
    figures: dict[str, Any] = {
        "samples": samples,
        "breakdown": breakdown,
        "ms_per_batch": median,
        "ms_per_batch_iqr": float(q3 - q1),
        "images_per_s": images_per_round / (median * batches) * 1e3,
        **{f"{m}_ms_per_batch": float(np.median(v)) for m, v in samples.items() if m != "wall"},
    }
    figures["gpu_ms_per_batch"] = figures.pop("gpu_latency_ms_per_batch")
    figures["gpu_compute_cv"] = breakdown["compute"]["cv"]
    return figures


def latency_figures(batch_latencies_ms: Sequence[np.ndarray], last3_ms: Sequence[float]) -> dict[str, Any]:
    """p50/p99 batch latency over every timed batch, and the tutorial's "last 3 of 10 batches"."""
    latencies = np.concatenate(batch_latencies_ms) if len(batch_latencies_ms) else np.array([np.nan])
    return {
        "latency_p50_ms": float(np.nanpercentile(latencies, 50)),
        "latency_p99_ms": float(np.nanpercentile(latencies, 99)),
        "last3_of_batches_ms": float(np.median(last3_ms)) if len(last3_ms) else None,
    }


def busy_ms(starts: np.ndarray, ends: np.ndarray) -> float:
    """The time covered by at least one of the spans [start, end): a GPU's busy time when the
    spans are its work on several streams, overlapping or not."""
    total, reach = 0.0, -np.inf
    for start, end in sorted(zip(starts.tolist(), ends.tolist())):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total
