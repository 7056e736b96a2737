"""The regression decision on per-round samples: identical, shifted, noisy, too few rounds."""

import numpy as np
import pytest

from trtbench import stats


def rounds(median, spread=0.01, n=25, seed=0):
    return list(median * (1 + spread * np.random.default_rng(seed).standard_normal(n)))


def test_identical_samples_are_ok():
    a = rounds(5.0)
    d = stats.decide(a, list(a), threshold=0.03)
    assert d.verdict == "ok" and d.change == 0 and d.p_value == pytest.approx(1.0, abs=0.05)


def test_a_shift_past_the_threshold_and_significant_is_a_regression():
    d = stats.decide(rounds(5.0, seed=1), rounds(5.25, seed=2), threshold=0.03)
    assert d.verdict == "REGRESSION" and d.p_value < stats.ALPHA and 0.04 < d.change < 0.06
    assert d.ci[0] > 1.03 and "p=" in d.reason


def test_a_shift_within_the_threshold_is_ok_even_when_significant():
    d = stats.decide(rounds(5.0, 0.001, seed=1), rounds(5.1, 0.001, seed=2), threshold=0.03)
    assert d.verdict == "ok" and d.p_value < stats.ALPHA


def test_faster_is_a_verdict_of_its_own():
    d = stats.decide(rounds(5.0, seed=1), rounds(4.5, seed=2), threshold=0.03)
    assert d.verdict == "faster" and d.change < -0.03


def test_noisy_samples_past_the_threshold_are_unclear_not_a_regression():
    old = rounds(5.0, spread=0.3, n=8, seed=3)
    new = rounds(5.4, spread=0.3, n=8, seed=4)
    d = stats.decide(old, new, threshold=0.03)
    assert d.change > 0.03 and d.verdict == "unclear" and "more rounds" in d.reason


def test_too_few_rounds_are_unclear():
    d = stats.decide([5.0, 5.1, 5.0], [9.0, 9.1, 9.2], threshold=0.03)
    assert d.verdict == "unclear" and d.p_value is None and "too few rounds" in d.reason
    assert stats.decide(rounds(5, n=5), rounds(9, n=5), 0.03, min_samples=5).p_value is not None


def test_threshold_boundary_and_bad_input():
    a = [8.0] * 10
    assert stats.decide(a, [10.0] * 10, threshold=0.25).verdict == "ok"  # exactly at the threshold: not past it
    assert stats.decide(a, [10.0] * 5 + [10.5] * 5, threshold=0.25).verdict == "REGRESSION"
    with pytest.raises(ValueError):
        stats.decide(a, [], 0.03)
    with pytest.raises(ValueError):
        stats.decide(a, [np.nan] * 10, 0.03)
    with pytest.raises(ValueError):
        stats.decide(a, a, 0)


def test_mann_whitney_matches_the_textbook():
    # scipy.stats.mannwhitneyu(method="asymptotic") gives these (checked when written)
    rng = np.random.default_rng(0)
    a, b = rng.normal(10, 1, 25), rng.normal(10, 1, 25)
    assert stats.mann_whitney_p(a, b) == pytest.approx(0.18703749337591546, rel=1e-9)
    ties_a, ties_b = np.round(rng.normal(10, 1, 20)), np.round(rng.normal(11, 1, 20))
    assert 0 < stats.mann_whitney_p(ties_a, ties_b) < 1
    assert stats.mann_whitney_p([1.0] * 5, [1.0] * 5) == 1.0
    assert stats.mann_whitney_p(range(10), range(100, 110)) < 0.001
    with pytest.raises(ValueError):
        stats.mann_whitney_p([], [1.0])


def test_threshold_from_history_is_the_scaled_spread_never_below_the_floor():
    assert stats.threshold_from_history([10.0, 10.1], floor=0.01, multiplier=2) is None  # too few runs
    assert stats.threshold_from_history([10.0, 10.1, 10.2], floor=0.01, multiplier=2) == pytest.approx(0.2 / 10.1 * 2)
    assert stats.threshold_from_history([10.0, 10.0, 10.0], floor=0.01, multiplier=2) == 0.01
    assert stats.run_spread([9.0, 10.0, 11.0]) == pytest.approx(0.2)


def test_summary_has_the_breakdown_fields():
    s = stats.summarize([1.0, 2.0, 3.0, 4.0])
    assert s["median"] == 2.5 and s["p50"] == 2.5 and s["n"] == 4 and s["p90"] == pytest.approx(3.7)
    assert s["cv"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2.5)
    with pytest.raises(ValueError):
        stats.summarize([])


def test_false_alarm_rate_on_identical_noise_is_small():
    """A/A on synthetic rounds: with a threshold of 2 x the noise, no alarms in 200 pairs."""
    alarms = sum(stats.decide(rounds(5, 0.02, seed=s), rounds(5, 0.02, seed=s + 1000), 0.04).verdict == "REGRESSION"
                 for s in range(200))
    assert alarms == 0
