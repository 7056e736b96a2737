"""Statistics of per-round samples and per-process medians, and the regression decisions
(numpy, and scipy's tests: a library made for them).

**Saved runs** (``decide``): a test's metric (wall time or GPU compute per batch) is
compared between two runs on its per-round samples. A change is a regression only when
both hold (as asv decides):

* the ratio of medians passes the test's noise-derived threshold, and
* a two-sided Mann-Whitney U test on the two sets of samples rejects "no change" at
  ``alpha``.

Slower past the threshold but not significant, the answer is "unclear" (can't tell yet:
more rounds are needed); with too few rounds on either side it is "unclear" too. The
threshold comes from saved runs of the same code on the same GPU
(``threshold_from_history``): rounds within a run are not independent of the run, so
the statistical test alone would flag run-to-run drift.

**A/B in one job** (``decide_ab``): each process of each side gives one value per test and
metric (the median of its rounds); processes alternate between the sides, so slow drift
of the machine falls on both. The change is the ratio of the sides' geometric means, with
Welch's t interval on the logarithms (process medians scatter around a per-process level
that no number of rounds removes: the processes are the samples).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as scipy_stats

ALPHA = 0.002  # asv's
# Below this the normal approximation of the Mann-Whitney test is poor. (At ALPHA even fully
# separated samples need 8 a side to be significant: fewer rounds can only be "unclear".)
MIN_SAMPLES = 5


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


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of the Mann-Whitney U test (normal approximation with tie and
    continuity corrections; fine from about 5 samples a side)."""
    if len(a) == 0 or len(b) == 0:
        raise ValueError(f"Mann-Whitney needs samples on both sides ({len(a)}, {len(b)})")
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if np.all(np.concatenate([x, y]) == x[0]):
        return 1.0  # every sample equal: no evidence of a change
    result = scipy_stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic", use_continuity=True)
    return float(result.pvalue)


def bootstrap_ratio_ci(
    old: Sequence[float], new: Sequence[float], level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Bootstrap interval (percentiles, seeded: reproducible) of median(new) / median(old)."""

    def ratio(a: np.ndarray, b: np.ndarray, axis: int) -> np.ndarray:
        return np.asarray(np.median(b, axis=axis) / np.median(a, axis=axis))

    result = scipy_stats.bootstrap(
        (np.asarray(old, np.float64), np.asarray(new, np.float64)),
        ratio,
        confidence_level=level,
        n_resamples=resamples,
        method="percentile",
        random_state=np.random.default_rng(seed),
        vectorized=True,
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


@dataclasses.dataclass(frozen=True)
class Decision:
    verdict: str  # ok, faster, REGRESSION or unclear
    old_median: float
    new_median: float
    threshold: float
    p_value: float | None  # None: too few samples to test
    reason: str

    @property
    def change(self) -> float:
        return self.new_median / self.old_median - 1


def decide(
    old: Sequence[float], new: Sequence[float], threshold: float, alpha: float = ALPHA, min_samples: int = MIN_SAMPLES
) -> Decision:
    """The verdict on one metric of one test (see the module's docstring)."""
    if not 0 < threshold < 10:
        raise ValueError(f"threshold {threshold!r} is not a fraction such as 0.05")
    a, b = np.asarray(old, np.float64), np.asarray(new, np.float64)
    if a.size == 0 or b.size == 0 or np.isnan(a).any() or np.isnan(b).any():
        raise ValueError(f"samples must be measured values ({a.size} old, {b.size} new)")
    old_median, new_median = float(np.median(a)), float(np.median(b))
    change = new_median / old_median - 1
    if min(a.size, b.size) < min_samples:
        return Decision(
            "unclear",
            old_median,
            new_median,
            threshold,
            None,
            f"too few rounds to test ({a.size} old, {b.size} new; need {min_samples} a side)",
        )
    p = mann_whitney_p(a, b)
    if abs(change) <= threshold:
        return Decision("ok", old_median, new_median, threshold, p, f"within the threshold ({change:+.1%})")
    if p >= alpha and change < 0:
        return Decision(
            "ok", old_median, new_median, threshold, p, f"{change:+.1%}, faster but not significant (p={p:.2g})"
        )
    if p >= alpha:
        return Decision(
            "unclear",
            old_median,
            new_median,
            threshold,
            p,
            f"{change:+.1%} is past the threshold but not significant (p={p:.2g} >= {alpha:g}): more rounds are needed",
        )
    verdict = "REGRESSION" if change > 0 else "faster"
    return Decision(verdict, old_median, new_median, threshold, p, f"{change:+.1%}, p={p:.2g}")


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


def threshold_from_history(
    medians: Sequence[float],
    floor: float,
    multiplier: float,
    min_runs: int = 3,
    cvs: Sequence[float] = (),
    cv_multiplier: float = 0.0,
) -> float | None:
    """A test's threshold from earlier runs of the same code (A/A): the run-to-run spread
    of their medians times ``multiplier``, or their round-to-round noise (median robust
    CV) times ``cv_multiplier``, whichever is larger, never below ``floor``; None with
    fewer than ``min_runs`` runs. The CV term covers what a few runs' spread cannot show
    yet: a host-bound test whose rounds scatter by 7% can land 25% apart between processes."""
    if len(medians) < min_runs:
        return None
    noise = cv_multiplier * float(np.median(cvs)) if len(cvs) else 0.0
    return max(floor, multiplier * run_spread(medians), noise)


# ---------------------------------------------------------------- A/B in one job

AB_VERDICTS = ("ok", "faster", "REGRESSION", "can't tell")


@dataclasses.dataclass(frozen=True)
class ABDecision:
    verdict: str  # one of AB_VERDICTS
    change: float  # B / A - 1, ratio of the geometric means of the per-process values
    ci: tuple[float, float]  # the change's (1 - alpha) interval; (nan, nan) with fewer than 2 a side
    p_value: float  # Welch's t-test on the logarithms (nan with fewer than 2 a side)
    threshold: float  # the smallest change that counts
    a_values: tuple[float, ...]  # one per process
    b_values: tuple[float, ...]

    @property
    def reason(self) -> str:
        if self.verdict == "REGRESSION":
            return f"slower by {self.change:+.1%} (p={self.p_value:.2g}), past {self.threshold:.1%}"
        if self.verdict == "faster":
            return f"faster by {self.change:+.1%} (p={self.p_value:.2g})"
        if self.verdict == "ok":
            return f"any slowdown is under {self.threshold:.1%}"
        if math.isnan(self.ci[1]):
            return "too few processes"
        return f"the interval {self.ci[0]:+.1%}..{self.ci[1]:+.1%} reaches past {self.threshold:.1%}: more processes"


def decide_ab(
    a: Sequence[float], b: Sequence[float], threshold: float, alpha: float, ok_alpha: float = 0.05
) -> ABDecision:
    """The verdict on one metric of one test from per-process values of the two sides.

    REGRESSION: B is slower by more than ``threshold`` and Welch's test rejects "no change"
    at ``alpha``; faster: the same, the other way; ok: the one-sided (1 - ok_alpha) upper
    bound of the change lies below ``threshold`` (an equivalence test, as TOST: a slowdown
    of ``threshold`` would pass as ok at most ``ok_alpha`` of the time); else can't tell
    (more processes narrow the interval). The interval reported is the (1 - alpha) one."""
    if not 0 < threshold < 10:
        raise ValueError(f"threshold {threshold!r} is not a fraction such as 0.05")
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if (
        x.size == 0
        or y.size == 0
        or not (np.isfinite(x).all() and np.isfinite(y).all() and (x > 0).all() and (y > 0).all())
    ):
        raise ValueError(f"per-process values must be positive times ({x.size} A, {y.size} B)")
    lx, ly = np.log(x), np.log(y)
    change = float(np.exp(ly.mean() - lx.mean()) - 1)
    nan = float("nan")
    if x.size < 2 or y.size < 2:
        return ABDecision("can't tell", change, (nan, nan), nan, threshold, tuple(x), tuple(y))
    if np.ptp(np.concatenate([lx, ly])) == 0:  # every value equal: no change, exactly
        low, high, p, bound = 0.0, 0.0, 1.0, 0.0
    else:
        test = scipy_stats.ttest_ind(ly, lx, equal_var=False)
        interval = test.confidence_interval(1 - alpha)
        low, high, p = float(np.exp(interval.low) - 1), float(np.exp(interval.high) - 1), float(test.pvalue)
        bound = float(np.exp(test.confidence_interval(1 - 2 * ok_alpha).high) - 1)
    if p < alpha and change > threshold:
        verdict = "REGRESSION"
    elif p < alpha and change < -threshold:
        verdict = "faster"
    elif bound < threshold:
        verdict = "ok"
    else:
        verdict = "can't tell"
    return ABDecision(verdict, change, (low, high), p, threshold, tuple(x), tuple(y))
