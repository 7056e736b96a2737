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
    assert "p=" in d.reason


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
    alarms = sum(
        stats.decide(rounds(5, 0.02, seed=s), rounds(5, 0.02, seed=s + 1000), 0.04).verdict == "REGRESSION"
        for s in range(200)
    )
    assert alarms == 0


# ---------------------------------------------------------------- boundaries, messages, defaults
# (each pins a behaviour a mutation test found unchecked: see mutation/run.py)

_F32 = np.random.default_rng(3)
F32_OLD = (5 + _F32.standard_normal(10)).astype(np.float32)
F32_NEW = (5.5 + _F32.standard_normal(10)).astype(np.float32)


def test_float32_samples_are_judged_in_float64():
    """A timer may hand float32 values: every figure is the one of their exact float64 copy."""
    old64, new64 = F32_OLD.astype(np.float64), F32_NEW.astype(np.float64)
    for values in (F32_OLD, F32_NEW):  # (values where float32 arithmetic would round differently)
        assert float(np.median(values)) != float(np.median(values.astype(np.float64)))
    assert stats.summarize(F32_OLD) == stats.summarize(old64)
    d32, d64 = stats.decide(F32_OLD, F32_NEW, 0.03), stats.decide(old64, new64, 0.03)
    assert (d32.old_median, d32.new_median, d32.p_value) == (d64.old_median, d64.new_median, d64.p_value)
    assert stats.bootstrap_ratio_ci(F32_OLD, F32_NEW) == stats.bootstrap_ratio_ci(old64, new64)
    half = F32_OLD.astype(np.float16)  # coarser still: a median of two halves rounds visibly
    assert stats.bootstrap_ratio_ci(half, F32_NEW) == stats.bootstrap_ratio_ci(half.astype(np.float64), new64)
    spread = np.array([1.1, 2.3, 3.7], np.float32)
    assert stats.run_spread(spread) == stats.run_spread(spread.astype(np.float64))


def test_summary_fields_edge_cases_and_messages():
    s = stats.summarize([1.0, 2.0, 3.0, 4.0])
    assert s == {
        "median": 2.5,
        "p50": 2.5,
        "p90": pytest.approx(3.7),
        "p99": pytest.approx(3.97),
        "cv": pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2.5),
        "n": 4,
    }
    assert stats.summarize([5.0])["cv"] == 0.0  # one value: no spread to speak of
    assert stats.summarize([1.0, 3.0])["cv"] == pytest.approx(np.std([1, 3], ddof=1) / 2)  # two are enough
    assert stats.summarize([0.5, 0.7])["cv"] == pytest.approx(np.std([0.5, 0.7], ddof=1) / 0.6)
    assert stats.summarize([-1.0, 1.0])["cv"] == 0.0  # no mean to scale by
    with pytest.raises(ValueError, match=r"^cannot summarize 0 values$"):
        stats.summarize([])
    with pytest.raises(ValueError, match=r"^cannot summarize 2 values with NaN$"):
        stats.summarize([1.0, np.nan])


def test_mann_whitney_with_ties_and_tiny_samples_matches_the_textbook():
    # scipy.stats.mannwhitneyu(a, b, method="asymptotic") (tie and continuity corrections), checked when written
    a, b = [1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 5.0], [2.0, 3.0, 4.0, 4.0, 5.0, 5.0, 6.0, 6.0]
    assert stats.mann_whitney_p(a, b) == pytest.approx(0.045126948888676105, rel=1e-9)
    assert stats.mann_whitney_p([0.0], [1.0, 2.0]) == pytest.approx(0.5402913746074199, rel=1e-9)
    assert stats.mann_whitney_p([1.0, 2.0, 3.0], [4.0]) == pytest.approx(0.37109336952269756, rel=1e-9)
    with pytest.raises(ValueError, match=r"^Mann-Whitney needs samples on both sides \(0, 1\)$"):
        stats.mann_whitney_p([], [1.0])
    with pytest.raises(ValueError, match=r"^Mann-Whitney needs samples on both sides \(1, 0\)$"):
        stats.mann_whitney_p([1.0], [])


def test_identical_samples_give_p_1_without_dividing_by_zero():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert stats.mann_whitney_p([1.0] * 5, [1.0] * 5) == 1.0
        assert stats.mann_whitney_p([2.0], [2.0]) == 1.0


def test_bootstrap_interval_of_the_ratio_of_medians_is_seeded_and_covers_the_ratio():
    """scipy's bootstrap (percentile intervals of median(new) / median(old), 2000 resamples,
    seeded): the same numbers every time, around the true ratio, wider where either side is noisier."""
    old, new = rounds(5.0, 0.02, n=12, seed=1), rounds(5.5, 0.03, n=9, seed=2)
    low, high = stats.bootstrap_ratio_ci(old, new)
    assert (low, high) == stats.bootstrap_ratio_ci(old, new) and low < 1.1 < high and high - low < 0.1
    narrow = stats.bootstrap_ratio_ci(old, new, level=0.8)
    assert low < narrow[0] < narrow[1] < high
    assert stats.bootstrap_ratio_ci(old, new, seed=1) != (low, high)
    noisier = stats.bootstrap_ratio_ci(rounds(5.0, 0.2, n=12, seed=1), new)
    assert noisier[1] - noisier[0] > high - low


def test_decision_fields_reasons_and_the_alpha_boundary():
    few = stats.decide([5.0, 5.2, 5.1], [6.0, 6.1, 6.2], threshold=0.03)
    assert few == stats.Decision(
        "unclear", 5.1, 6.1, 0.03, None, "too few rounds to test (3 old, 3 new; need 5 a side)"
    )
    assert stats.decide([5.0], [5.0] * 10, 0.03).verdict == "unclear"  # one round is too few, not an error
    ok = stats.decide([8.0] * 10, [8.08] * 10, threshold=0.03)
    assert ok.verdict == "ok" and ok.reason == "within the threshold (+1.0%)"
    noisy = stats.decide(rounds(5.0, 0.3, n=8, seed=3), rounds(5.4, 0.3, n=8, seed=4), threshold=0.03)
    assert noisy.verdict == "unclear" and noisy.reason == (
        f"{noisy.change:+.1%} is past the threshold but not significant (p={noisy.p_value:.2g} >= 0.002): "
        "more rounds are needed"
    )
    a, b = rounds(5.0, seed=1), rounds(5.5, seed=2)
    p = stats.mann_whitney_p(a, b)
    assert stats.decide(a, b, 0.03, alpha=p).verdict == "unclear"  # p equal to alpha is not significant
    assert stats.decide(a, b, 0.03, alpha=p * (1 + 1e-9)).verdict == "REGRESSION"
    with pytest.raises(ValueError, match=r"^threshold 10 is not a fraction such as 0.05$"):
        stats.decide(a, b, 10)
    with pytest.raises(ValueError, match=r"^samples must be measured values \(25 old, 0 new\)$"):
        stats.decide(a, [], 0.03)


def test_faster_past_the_threshold_but_not_significant_is_ok_not_unclear():
    old, new = rounds(5.0, spread=0.3, n=8, seed=3), rounds(4.4, spread=0.3, n=8, seed=103)
    d = stats.decide(old, new, threshold=0.03)
    assert d.change < -0.03 and d.p_value >= stats.ALPHA
    assert d.verdict == "ok" and d.reason == (f"{d.change:+.1%}, faster but not significant (p={d.p_value:.2g})")
    a, b = rounds(5.0, seed=1), rounds(4.5, seed=2)
    p = stats.mann_whitney_p(a, b)
    assert stats.decide(a, b, 0.03, alpha=p).verdict == "ok"  # p equal to alpha is not significant
    assert stats.decide(a, b, 0.03, alpha=p * (1 + 1e-9)).verdict == "faster"


def test_robust_cv_is_the_scaled_median_absolute_deviation_over_the_median():
    assert stats.robust_cv([1.0, 2.0, 3.0, 4.0, 100.0]) == pytest.approx(1.4826 * 1 / 3)  # the outlier does not count
    assert stats.robust_cv([1.0, 2.0, 3.0, 5.0]) == pytest.approx(1.4826 * 1.0 / 2.5)
    assert stats.robust_cv(F32_OLD) == stats.robust_cv(F32_OLD.astype(np.float64))


def test_threshold_from_history_takes_the_round_noise_term_only_with_its_multiplier():
    import warnings

    steady = [10.0, 10.0, 10.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no CV given: nothing to take a median of
        assert stats.threshold_from_history(steady, floor=0.01, multiplier=2) == 0.01
    assert stats.threshold_from_history(steady, 0.01, 2, cvs=[0.5, 0.5, 0.5]) == 0.01  # multiplier 0 by default
    assert stats.threshold_from_history(steady, 0.01, 2, cvs=[0.01, 0.02, 0.03], cv_multiplier=5) == pytest.approx(0.1)
    assert stats.threshold_from_history([10.0, 10.1, 10.2], 0.01, 2, cvs=[0.001] * 3, cv_multiplier=5) == pytest.approx(
        0.2 / 10.1 * 2
    )  # the larger term wins


def test_bootstrap_is_scipys_percentile_interval_of_2000_seeded_resamples():
    from scipy import stats as scipy_stats

    old, new = rounds(5.0, 0.02, n=12, seed=1), rounds(5.5, 0.03, n=9, seed=2)
    for level, seed in ((0.95, 0), (0.8, 3)):
        expected = scipy_stats.bootstrap(
            (np.asarray(old), np.asarray(new)),
            lambda a, b, axis: np.median(b, axis=axis) / np.median(a, axis=axis),
            confidence_level=level,
            n_resamples=2000,
            method="percentile",
            random_state=np.random.default_rng(seed),
        ).confidence_interval
        assert stats.bootstrap_ratio_ci(old, new, level=level, seed=seed) == (expected.low, expected.high)


# ---------------------------------------------------------------- the A/B decision: inputs, fields, boundaries

AB_A = [5.0, 5.1, 4.9, 5.05]  # 4 processes of A, steady
AB_B = [5.6, 5.4, 5.9, 5.2, 5.7, 5.5]  # 6 of B, about 10% slower and noisier


def test_ab_values_must_be_positive_finite_times_on_both_sides():
    for a, b in (([], [1.0, 2.0]), ([1.0, 2.0], []), ([1.0, np.inf], [1.0, 2.0]), ([1.0, 2.0], [np.inf, 1.0])):
        with pytest.raises(
            ValueError, match=rf"^per-process values must be positive times \({len(a)} A, {len(b)} B\)$"
        ):
            stats.decide_ab(a, b, 0.05, 0.01)
    for a, b in (([1.0, 0.0], [1.0, 2.0]), ([1.0, 2.0], [0.0, 1.0]), ([-1.0, 2.0], [1.0, 2.0])):
        with pytest.raises(ValueError, match="positive times"):
            stats.decide_ab(a, b, 0.05, 0.01)
    assert stats.decide_ab([0.5, 0.51], [0.5, 0.52], 0.5, 0.01).verdict == "ok"  # times below 1 ms are times
    with pytest.raises(ValueError, match=r"^threshold 10 is not a fraction such as 0.05$"):
        stats.decide_ab(AB_A, AB_B, 10, 0.01)


def test_ab_with_fewer_than_two_processes_a_side_keeps_what_it_has():
    for a, b in (([2.0], [3.0, 3.1, 2.9]), ([3.0, 3.1, 2.9], [2.0]), ([2.0], [2.0, 2.0])):
        d = stats.decide_ab(a, b, 0.05, 0.01)
        assert d.verdict == "can't tell" and d.reason == "too few processes"
        assert d.change == pytest.approx(np.exp(np.mean(np.log(b)) - np.mean(np.log(a))) - 1)
        assert np.isnan(d.p_value) and all(np.isnan(d.ci)) and d.threshold == 0.05
        assert (d.a_values, d.b_values) == (tuple(a), tuple(b))
    two = stats.decide_ab([2.0, 2.02], [2.4, 2.41], 0.05, 0.01)  # two a side are enough to test
    assert not np.isnan(two.p_value) and two.ci[0] < two.change < two.ci[1]


def test_ab_is_welchs_test_on_the_logarithms_and_its_interval():
    from scipy import stats as scipy_stats

    d = stats.decide_ab(AB_A, AB_B, 0.05, 0.01)
    welch = scipy_stats.ttest_ind(np.log(AB_B), np.log(AB_A), equal_var=False)
    student = scipy_stats.ttest_ind(np.log(AB_B), np.log(AB_A), equal_var=True)
    assert d.p_value == float(welch.pvalue) != float(student.pvalue)
    interval = welch.confidence_interval(0.99)
    assert d.ci == (float(np.exp(interval.low) - 1), float(np.exp(interval.high) - 1))
    assert d.change == pytest.approx(np.exp(np.mean(np.log(AB_B)) - np.mean(np.log(AB_A))) - 1, rel=1e-12)
    assert d.ci[0] < d.change < d.ci[1] and 0.10 < d.change < 0.11
    assert (d.verdict, d.threshold, d.a_values, d.b_values) == ("REGRESSION", 0.05, tuple(AB_A), tuple(AB_B))


def test_ab_boundaries_are_strict():
    """Significant means p below alpha, past the threshold means beyond it, and ok means the
    one-sided bound below the threshold: at equality, none of them holds."""
    from scipy import stats as scipy_stats

    d = stats.decide_ab(AB_A, AB_B, 0.05, 0.05)
    assert d.verdict == "REGRESSION"
    assert stats.decide_ab(AB_A, AB_B, 0.05, d.p_value).verdict == "can't tell"
    assert stats.decide_ab(AB_A, AB_B, 0.05, d.p_value * (1 + 1e-9)).verdict == "REGRESSION"
    assert stats.decide_ab(AB_A, AB_B, d.change, 0.05).verdict == "can't tell"
    assert stats.decide_ab(AB_A, AB_B, d.change * (1 - 1e-9), 0.05).verdict == "REGRESSION"
    f = stats.decide_ab(AB_B, AB_A, 0.05, 0.05)
    assert f.verdict == "faster"
    assert stats.decide_ab(AB_B, AB_A, -f.change, 0.05).verdict == "ok"
    assert stats.decide_ab(AB_B, AB_A, -f.change * (1 - 1e-9), 0.05).verdict == "faster"
    assert stats.decide_ab(AB_B, AB_A, 0.05, f.p_value).verdict == "ok"
    assert stats.decide_ab(AB_B, AB_A, 0.05, f.p_value * (1 + 1e-9)).verdict == "faster"
    a, b = [5.0, 5.1, 4.9, 5.05], [5.0, 5.15, 4.95, 5.1]  # no significant change
    test = scipy_stats.ttest_ind(np.log(b), np.log(a), equal_var=False)
    bound = float(np.exp(test.confidence_interval(1 - 2 * 0.05).high) - 1)
    assert stats.decide_ab(a, b, bound, 0.01).verdict == "can't tell"
    assert stats.decide_ab(a, b, bound * (1 + 1e-9), 0.01).verdict == "ok"


def test_ab_values_are_judged_in_float64():
    """Per-process values in float32 decide exactly as their float64 copies do."""
    old64, new64 = F32_OLD.astype(np.float64), F32_NEW.astype(np.float64)
    for a, b in ((F32_OLD, new64), (old64, F32_NEW)):
        d32, d64 = stats.decide_ab(a, b, 0.05, 0.01), stats.decide_ab(old64, new64, 0.05, 0.01)
        assert (d32.change, d32.ci, d32.p_value) == (d64.change, d64.ci, d64.p_value)
