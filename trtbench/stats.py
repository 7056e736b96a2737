"""Statistics of per-round samples, and the regression decision (pure numpy).

A test's metric (wall time or GPU compute per batch) is compared between two runs on
its per-round samples. A change is a regression only when both hold (as asv decides):

* the ratio of medians passes the test's noise-derived threshold, and
* a two-sided Mann-Whitney U test on the two sets of samples rejects "no change" at
  ``alpha``.

Slower past the threshold but not significant, the answer is "unclear" (can't tell yet:
more rounds are needed); with too few rounds on either side it is "unclear" too. The
threshold comes from saved runs of the same code on the same GPU
(``threshold_from_history``): rounds within a run are not independent of the run, so
the statistical test alone would flag run-to-run drift.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np

ALPHA = 0.002  # asv's
MIN_SAMPLES = 5  # below this a Mann-Whitney test cannot reach ALPHA


def summarize(values: Sequence[float]) -> dict[str, float]:
    """Median, p50/p90/p99 and coefficient of variation (std / mean) of a sample."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0 or np.isnan(arr).any():
        raise ValueError(f"cannot summarize {arr.size} values" + (" with NaN" if arr.size else ""))
    mean = float(arr.mean())
    return {
        "median": float(np.median(arr)),
        "p50": float(np.percentile(arr, 50)),
        "p90": float(np.percentile(arr, 90)),
        "p99": float(np.percentile(arr, 99)),
        "cv": float(arr.std(ddof=1) / mean) if arr.size > 1 and mean > 0 else 0.0,
        "n": int(arr.size),
    }


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    sorted_values = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of the Mann-Whitney U test (normal approximation with tie and
    continuity corrections; fine from about 5 samples a side)."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        raise ValueError(f"Mann-Whitney needs samples on both sides ({n1}, {n2})")
    ranks = _ranks(np.concatenate([x, y]))
    u1 = ranks[:n1].sum() - n1 * (n1 + 1) / 2
    mean_u = n1 * n2 / 2
    _, counts = np.unique(np.concatenate([x, y]), return_counts=True)
    n = n1 + n2
    tie = float((counts ** 3 - counts).sum()) / (n * (n - 1)) if n > 1 else 0.0
    var_u = n1 * n2 / 12 * ((n + 1) - tie)
    if var_u <= 0:
        return 1.0  # every sample equal: no evidence of a change
    z = (abs(u1 - mean_u) - 0.5) / math.sqrt(var_u)
    return float(min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2))))


def bootstrap_ratio_ci(old: Sequence[float], new: Sequence[float], level: float = 0.95,
                       resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Bootstrap confidence interval of median(new) / median(old) (seeded: reproducible)."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(old, np.float64), np.asarray(new, np.float64)
    ratios = np.median(rng.choice(b, (resamples, len(b))), axis=1) / np.median(rng.choice(a, (resamples, len(a))), axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(ratios, tail)), float(np.percentile(ratios, 100 - tail))


@dataclasses.dataclass(frozen=True)
class Decision:
    verdict: str  # ok, faster, REGRESSION or unclear
    old_median: float
    new_median: float
    threshold: float
    p_value: float | None  # None: too few samples to test
    ci: tuple[float, float] | None  # of the ratio new / old
    reason: str

    @property
    def change(self) -> float:
        return self.new_median / self.old_median - 1


def decide(old: Sequence[float], new: Sequence[float], threshold: float, alpha: float = ALPHA,
           min_samples: int = MIN_SAMPLES) -> Decision:
    """The verdict on one metric of one test (see the module's docstring)."""
    if not 0 < threshold < 10:
        raise ValueError(f"threshold {threshold!r} is not a fraction such as 0.05")
    a, b = np.asarray(old, np.float64), np.asarray(new, np.float64)
    if a.size == 0 or b.size == 0 or np.isnan(a).any() or np.isnan(b).any():
        raise ValueError(f"samples must be measured values ({a.size} old, {b.size} new)")
    old_median, new_median = float(np.median(a)), float(np.median(b))
    change = new_median / old_median - 1
    if min(a.size, b.size) < min_samples:
        return Decision("unclear", old_median, new_median, threshold, None, None,
                        f"too few rounds to test ({a.size} old, {b.size} new; need {min_samples} a side)")
    p = mann_whitney_p(a, b)
    ci = bootstrap_ratio_ci(a, b)
    if abs(change) <= threshold:
        return Decision("ok", old_median, new_median, threshold, p, ci, f"within the threshold ({change:+.1%})")
    if p >= alpha and change < 0:
        return Decision("ok", old_median, new_median, threshold, p, ci,
                        f"{change:+.1%}, faster but not significant (p={p:.2g})")
    if p >= alpha:
        return Decision("unclear", old_median, new_median, threshold, p, ci,
                        f"{change:+.1%} is past the threshold but not significant (p={p:.2g} >= {alpha:g}): "
                        "more rounds are needed")
    verdict = "REGRESSION" if change > 0 else "faster"
    return Decision(verdict, old_median, new_median, threshold, p, ci, f"{change:+.1%}, p={p:.2g}")


def run_spread(medians: Sequence[float]) -> float:
    """(max - min) / median of per-run medians: how far apart runs of the same code land."""
    arr = np.asarray(medians, np.float64)
    return float((arr.max() - arr.min()) / np.median(arr))


def robust_cv(samples: Sequence[float]) -> float:
    """1.4826 x MAD / median of one run's per-round samples: its round-to-round noise,
    insensitive to a few slow rounds."""
    arr = np.asarray(samples, np.float64)
    med = float(np.median(arr))
    return float(1.4826 * np.median(np.abs(arr - med)) / med)


def threshold_from_history(medians: Sequence[float], floor: float, multiplier: float, min_runs: int = 3,
                           cvs: Sequence[float] = (), cv_multiplier: float = 0.0) -> float | None:
    """A test's threshold from earlier runs of the same code (A/A): the run-to-run spread
    of their medians times ``multiplier``, or their round-to-round noise (median robust
    CV) times ``cv_multiplier``, whichever is larger, never below ``floor``; None with
    fewer than ``min_runs`` runs. The CV term covers what a few runs' spread cannot show
    yet: a host-bound test whose rounds scatter by 7% can land 25% apart between processes."""
    if len(medians) < min_runs:
        return None
    noise = cv_multiplier * float(np.median(cvs)) if len(cvs) else 0.0
    return max(floor, multiplier * run_spread(medians), noise)
