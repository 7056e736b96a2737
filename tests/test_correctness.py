"""The comparison every approach's outputs go through, and its power: on the default
model's real outputs, the bugs the check exists for must fail and the truth must pass."""

import copy

import numpy as np
import pytest
import torch

from trtbench import images as img
from trtbench.correctness import TOLERANCES, ErrorStats, PipelineOutputs, Tolerance, compare, softmax, top_k

BATCH = 32


@pytest.fixture(scope="module")
def inputs():
    return [img.normalize(img.make_images(10088, i, BATCH)) for i in range(2)]


@pytest.fixture(scope="module")
def reference(net, inputs):
    """The default model's logits on two batches (what ONNX Runtime computes: see test_model)."""
    with torch.no_grad():
        return [{"output0": net(torch.from_numpy(x)).numpy()} for x in inputs]


def as_outputs(logits_batches):
    """What a correct pipeline produces from these logits (host post-processing)."""
    return [
        PipelineOutputs(lg.astype(np.float32), softmax(lg).argmax(1), softmax(lg).max(1).astype(np.float32))
        for lg in logits_batches
    ]


def logits_of(reference):
    return [r["output0"].copy() for r in reference]


def image_dependent_rms(logits):
    return float(np.sqrt(np.mean((logits - logits.mean(axis=0)) ** 2)))


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_the_exact_reference_passes(reference, precision):
    result = compare(as_outputs(logits_of(reference)), reference, precision)
    assert result.passed and result.rel_l2 == 0 and result.top1 == 1.0 and result.top5 == 1.0
    assert result.tolerance == TOLERANCES[precision]


def test_fp16_rounding_of_the_same_model_passes_the_fp16_tolerance(net, inputs, reference):
    """Positive control: the model with fp16-rounded weights and inputs (what an fp16 engine
    stores; its GPU kernels accumulate in fp32) is within the fp16 tolerance."""
    half = copy.deepcopy(net).half().float()
    with torch.no_grad():
        out = [half(torch.from_numpy(x).half().float()).numpy() for x in inputs]
    result = compare(as_outputs(out), reference, "fp16")
    assert result.passed, result.describe()
    assert result.rel_l2 > 0  # it did differ


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_two_images_swapped_within_a_batch_fail(reference, precision):
    logits = logits_of(reference)
    logits[1][[3, 17]] = logits[1][[17, 3]]
    result = compare(as_outputs(logits), reference, precision)
    assert not result.passed and result.worst_batch == 1
    assert result.rel_l2 > 5 * TOLERANCES[precision].rel_l2


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_the_previous_batchs_output_fails_far_below_tolerance(reference, precision):
    logits = logits_of(reference)
    shifted = [logits[1], logits[0]]  # every batch post-processed from another batch's output
    result = compare(as_outputs(shifted), reference, precision)
    assert not result.passed
    assert result.top1 < 0.25 and result.rel_l2 > 0.5  # not a near miss: the outputs tell images apart


@pytest.mark.parametrize("precision,share", [("fp16", 0.10), ("fp32", 0.02)])
def test_noise_of_a_small_share_of_the_image_dependent_part_fails(reference, precision, share):
    rng = np.random.default_rng(7)
    logits = logits_of(reference)
    noisy = [lg + share * image_dependent_rms(lg) * rng.standard_normal(lg.shape).astype(np.float32) for lg in logits]
    result = compare(as_outputs(noisy), reference, precision)
    assert not result.passed, result.describe()
    assert any(f.startswith("relative L2") for f in result.failures())


def test_one_batch_left_unwritten_fails(reference):
    outputs = as_outputs(logits_of(reference))
    outputs[1].logits[:] = np.nan  # the poison an unwritten batch keeps
    outputs[1].classes[:] = -1
    outputs[1].max_probs[:] = np.nan
    result = compare(outputs, reference, "fp16")
    assert not result.passed and np.isnan(result.rel_l2) and result.worst_batch == 1
    assert len(result.failures()) == 4  # NaN fails every bound


def test_classes_from_another_batch_fail_even_with_right_logits(reference):
    """The tutorial's race: batch 0 post-processed from batch 1's buffer, logits copy right."""
    outputs = as_outputs(logits_of(reference))
    outputs[0].classes[:] = outputs[1].classes
    result = compare(outputs, reference, "fp32")
    assert result.rel_l2 == 0 and not result.passed and result.top1 < 0.25


def test_a_wrong_top1_probability_fails(reference):
    outputs = as_outputs(logits_of(reference))
    outputs[0].max_probs[5] += 0.1
    result = compare(outputs, reference, "fp16")
    assert not result.passed and result.failures() == [f"top-1 probability error {result.prob_abs:.3g} > 0.001"]


def test_gpu_top5_is_checked_against_the_graphs_own_reference(reference):
    """A graph with top-5 outputs: its classes and probabilities against ONNX Runtime's run of it."""
    logits = logits_of(reference)
    ref = [
        dict(
            r,
            top5_class=top_k(r["output0"]).astype(np.int32),
            top5_prob=np.take_along_axis(softmax(r["output0"]), top_k(r["output0"]), 1),
        )
        for r in reference
    ]
    good = [
        PipelineOutputs(lg, r["top5_class"][:, 0], r["top5_prob"][:, 0], r["top5_class"]) for lg, r in zip(logits, ref)
    ]
    assert compare(good, ref, "fp16").passed
    bad_top5 = [PipelineOutputs(g.logits, g.classes, g.max_probs, g.top5[:, ::-1].copy()) for g in good]
    bad_top5[0].top5[:, 0] = 999 - bad_top5[0].top5[:, 0]  # a wrong class among the five
    assert compare(bad_top5, ref, "fp16").top5 < 1.0


def test_error_statistics_as_polygraphy_reports_them():
    ref = np.array([[3.0, 4.0], [0.0, 0.0]])
    out = np.array([[3.0, 4.0], [0.0, 1.0]])
    stats = ErrorStats.of(out, ref)
    assert stats.rel_l2 == pytest.approx(1 / 5) and stats.max_abs == 1.0 and stats.mean_abs == 0.25
    assert stats.median_abs == 0.0 and stats.p99_abs == pytest.approx(0.97)
    assert ErrorStats.of(ref, ref).rel_l2 == 0
    with pytest.raises(ValueError, match=r"output shape \(1, 2\) differs from the reference's \(2, 2\)"):
        ErrorStats.of(out[:1], ref)


def test_top5_agreement_is_the_mean_overlap(reference):
    logits = logits_of(reference)[:1]
    outputs = as_outputs(logits)
    top5 = top_k(logits[0])
    outputs[0].top5 = np.concatenate([top5[:, :4], np.full((BATCH, 1), -7)], axis=1)  # 4 of 5 right everywhere
    assert compare(outputs, reference[:1], "fp32").top5 == pytest.approx(0.8)


def test_report_names_the_tolerance_that_would_have_passed(reference):
    logits = logits_of(reference)
    logits[0] *= 1.02
    result = compare(as_outputs(logits), reference, "fp32")
    assert result.required == Tolerance(result.rel_l2, result.top1, result.top5, result.prob_abs, 0.10)
    text = result.describe()
    assert text.startswith("relative L2") and "would pass with rel. L2 <= " in text and "worst batch 0 of 2" in text
    info = result.as_extra_info()
    assert info["errors"]["would_pass_with"]["rel_l2"] == result.rel_l2
    assert set(info["errors"]["logits"]) == {"rel_l2", "max_abs", "mean_abs", "median_abs", "p99_abs"}
    assert len(info["errors"]["per_batch"]) == 2 and info["top5_agreement"] == result.top5


def test_mismatched_batches_are_errors(reference):
    outputs = as_outputs(logits_of(reference))
    with pytest.raises(ValueError, match="1 batches of outputs for 2 references"):
        compare(outputs[:1], reference, "fp32")
    with pytest.raises(ValueError, match="classes"):
        compare(
            [PipelineOutputs(outputs[0].logits, outputs[0].classes[:3], outputs[0].max_probs)], reference[:1], "fp32"
        )


def test_tolerances_are_ordered_and_below_the_power_perturbations():
    fp32, fp16 = TOLERANCES["fp32"], TOLERANCES["fp16"]
    assert fp32.rel_l2 < fp16.rel_l2 <= 0.1 / 2 and fp32.rel_l2 <= 0.02 / 2  # each at least 2x under its perturbation
    assert fp32.top1 >= fp16.top1 and fp32.top5 >= fp16.top5 and fp32.prob_abs <= fp16.prob_abs


# ---------------------------------------------------------------- synthetic: every bound, branch and message
# (fast, no model: each pins a behaviour a mutation test found unchecked; see mutation/run.py)

import dataclasses  # noqa: E402

from trtbench.correctness import BatchComparison, Comparison, agreement  # noqa: E402


def test_tolerances_are_pinned():
    """The bounds themselves (a loosened one must be a deliberate, reviewed change)."""
    assert {
        "fp32": Tolerance(rel_l2=1e-2, top1=0.99, top5=0.99, prob_abs=1e-3, tie_margin=0.10),
        "fp16": Tolerance(rel_l2=2e-2, top1=0.99, top5=0.99, prob_abs=1e-3, tie_margin=0.15),
    } == TOLERANCES


def synthetic_reference(batch=6, classes=12, seed=0):
    logits = (3 * np.random.default_rng(seed).standard_normal((batch, classes))).astype(np.float32)
    return {"output0": logits}


def test_softmax_per_row_without_overflow():
    logits = np.array([[1000.0, 999.0, 998.0], [0.0, 1.0, 2.0]])  # rows far apart, not square
    row = np.exp([0.0, -1.0, -2.0]) / np.exp([0.0, -1.0, -2.0]).sum()
    assert np.allclose(softmax(logits), [row, row[::-1]], rtol=1e-12, atol=0)


def test_top_k_is_stable_among_ties_and_per_row():
    tied = np.tile([1.0, 0.0], 15)[None, :]  # 30 classes, 15 tied at the top: the lowest indices first
    assert top_k(tied).tolist() == [[0, 2, 4, 6, 8]]
    assert top_k(np.array([[3.0, 1.0, 2.0], [1.0, 3.0, 2.0]]), 2).tolist() == [[0, 2], [1, 2]]


REF4 = np.array([[3.0, 2.0, 1.0, 0.0]])  # RMS sqrt(3.5) = 1.8708


def test_agreement_boundary_is_the_kth_logit_less_margin_times_rms():
    assert agreement(np.array([[0]]), REF4, 1, 0.0) == 1.0  # the top class itself, at the boundary
    assert agreement(np.array([[0]]), REF4, 1, 0.1) == 1.0
    assert agreement(np.array([[2]]), REF4, 1, 0.0) == 0.0
    assert agreement(np.array([[1]]), REF4, 1, 0.5) == 0.0  # 2 < 3 - 0.5 x 1.87
    assert agreement(np.array([[1]]), REF4, 1, 0.55) == 1.0  # 2 >= 3 - 0.55 x 1.87: a near-tie
    assert agreement(np.array([[1], [2]]), REF4.repeat(2, axis=0), 2, 0.0) == 0.5  # top-2: class 1 in, class 2 out


def test_agreement_is_per_row_and_per_column():
    ref = np.array([[3.0, 2.0, 1.0, 0.0], [0.0, 1.0, 2.0, 3.0]])
    assert agreement(np.array([[0], [3]]), ref, 1, 0.0) == 1.0
    assert agreement(np.array([[0, 1], [3, 0]]), ref, 2, 0.0) == 0.75


def test_an_invalid_class_never_agrees():
    ref = np.array([[0.0, 1.0, 2.0, 3.0]])  # the last class is the top one
    assert agreement(np.array([[-1]]), ref, 1, 0.5) == 0.0  # the poison -1 is not "the last class"
    assert agreement(np.array([[4]]), ref, 1, 0.5) == 0.0  # past the last class
    assert agreement(np.array([[-1]]), np.array([[2.0]]), 1, 0.1) == 0.0  # even with a single class


def batch_outputs(logits, **changes):
    probs = softmax(logits.astype(np.float64))
    out = PipelineOutputs(logits.copy(), probs.argmax(1), probs.max(1).astype(np.float32))
    for name, value in changes.items():
        setattr(out, name, value)
    return out


def test_exact_outputs_pass_with_every_figure_recorded():
    refs = [synthetic_reference(seed=s) for s in range(2)]
    result = compare([batch_outputs(r["output0"]) for r in refs], refs, "fp16")
    assert result.precision == "fp16" and result.tolerance == TOLERANCES["fp16"] and len(result.batches) == 2
    for b in result.batches:
        assert isinstance(b, BatchComparison) and b.top1 == 1.0 and b.top5 == 1.0
        assert b.logits == ErrorStats(0.0, 0.0, 0.0, 0.0, 0.0) and b.probs.max_abs < 1e-12
        assert b.prob_abs < 1e-7
    assert result.passed


def test_each_batch_is_judged_against_its_own_reference():
    refs = [synthetic_reference(seed=s) for s in range(2)]
    noise = 0.01 * np.random.default_rng(9).standard_normal(refs[1]["output0"].shape).astype(np.float32)
    outputs = [batch_outputs(refs[0]["output0"]), batch_outputs(refs[1]["output0"] + noise)]
    outputs[0].max_probs[2] += 0.01
    result = compare(outputs, refs, "fp32")
    b0, b1 = result.batches
    assert b0.logits.rel_l2 == 0.0 and b0.prob_abs == pytest.approx(0.01, abs=1e-6)
    expected = ErrorStats.of(outputs[1].logits, refs[1]["output0"])
    assert b1.logits == expected and b1.logits.rel_l2 > 0
    assert b1.probs == ErrorStats.of(
        softmax(outputs[1].logits.astype(np.float64)), softmax(refs[1]["output0"].astype(np.float64))
    )


def test_top1_probability_is_checked_against_the_pipelines_own_logits():
    ref = synthetic_reference()
    drifted = ref["output0"] + np.float32(0.5)  # logits off the reference: judged by relative L2, not here
    assert compare([batch_outputs(drifted)], [ref], "fp16").batches[0].prob_abs < 1e-7
    own = softmax(drifted.astype(np.float64))
    off = batch_outputs(drifted)
    off.max_probs[3] += 0.01
    assert compare([off], [ref], "fp16").batches[0].prob_abs == pytest.approx(0.01, abs=1e-6)
    second = batch_outputs(drifted)
    second.classes[0] = top_k(drifted)[0, 1]  # the probability of another class than the one reported
    assert compare([second], [ref], "fp16").batches[0].prob_abs == pytest.approx(
        own[0].max() - np.sort(own[0])[-2], abs=1e-6
    )
    poisoned = batch_outputs(drifted)
    poisoned.classes[1] = -1  # no class: no probability can be right
    assert compare([poisoned], [ref], "fp16").batches[0].prob_abs == np.inf
    poisoned.classes[1] = own.shape[1]
    assert compare([poisoned], [ref], "fp16").batches[0].prob_abs == np.inf


def test_top5_comes_from_the_pipeline_when_it_computes_one():
    ref = synthetic_reference()
    wrong = top_k(ref["output0"]).copy()
    wrong[:, 4] = top_k(-ref["output0"])[:, 0]  # the lowest class instead of the 5th: 4 of 5 right
    assert compare([batch_outputs(ref["output0"], top5=wrong)], [ref], "fp32").top5 == pytest.approx(0.8)
    assert compare([batch_outputs(ref["output0"], top5=None)], [ref], "fp32").top5 == 1.0


def test_tie_margin_follows_the_precision():
    ref = np.zeros((1, 10), np.float32)
    ref[0, :2] = [10.0, 10.0 - 0.12 * 10.0 / np.sqrt(10)]  # class 1 at 0.12 x RMS below the top (RMS ~ 10/sqrt(10))
    rms = float(np.sqrt(np.mean(ref.astype(np.float64) ** 2)))
    ref[0, 1] = 10.0 - 0.12 * rms
    out = batch_outputs(ref[0:1], classes=np.array([1]))
    assert compare([out], [{"output0": ref}], "fp16").top1 == 1.0  # within 0.15 RMS: a near-tie
    assert compare([out], [{"output0": ref}], "fp32").top1 == 0.0  # not within 0.10 RMS


def test_a_nan_probability_fails_the_bound():
    ref = synthetic_reference()
    out = batch_outputs(ref["output0"])
    out.max_probs[0] = np.nan
    result = compare([out], [ref], "fp16")
    assert np.isnan(result.batches[0].prob_abs)
    assert result.failures() == [f"top-1 probability error nan > {TOLERANCES['fp16'].prob_abs:g}"]


def test_shape_and_count_errors_say_what_was_given():
    ref = synthetic_reference(batch=4)
    good = batch_outputs(ref["output0"])
    with pytest.raises(ValueError, match=r"^\(3,\) classes / \(4,\) probabilities for a batch of 4$"):
        compare([batch_outputs(ref["output0"], classes=good.classes[:3])], [ref], "fp32")
    with pytest.raises(ValueError, match=r"^\(4,\) classes / \(3,\) probabilities for a batch of 4$"):
        compare([batch_outputs(ref["output0"], max_probs=good.max_probs[:3])], [ref], "fp32")
    with pytest.raises(ValueError, match=r"^0 batches of outputs for 0 references$"):
        compare([], [], "fp32")
    with pytest.raises(ValueError, match=r"^2 batches of outputs for 1 references$"):
        compare([good, good], [ref], "fp32")
    assert compare([good], [ref], "fp32").passed


def test_relative_error_against_a_small_or_zero_reference():
    assert ErrorStats.of(np.array([[0.3, 0.5]]), np.array([[0.3, 0.4]])).rel_l2 == pytest.approx(0.2)  # norm 0.5
    assert ErrorStats.of(np.array([[0.3, 0.4]]), np.zeros((1, 2))).rel_l2 == pytest.approx(0.5)  # absolute


def test_worst_is_field_by_field_and_nan_wins():
    a, b = ErrorStats(0.1, 2.0, 0.3, 0.1, 1.0), ErrorStats(0.2, 1.0, 0.4, 0.05, 1.5)
    assert ErrorStats.worst([a, b]) == ErrorStats(0.2, 2.0, 0.4, 0.1, 1.5)
    worst = ErrorStats.worst([a, ErrorStats(float("nan"), 1.0, 0.1, 0.0, 0.0)])
    assert np.isnan(worst.rel_l2) and worst.max_abs == 2.0


def comparison(rel_l2=0.005, top1=1.0, top5=1.0, prob_abs=None, precision="fp32"):
    """Two batches; the second one holds the given figures (prob_abs: half the bound by default)."""
    tol = TOLERANCES[precision]
    good = BatchComparison(
        ErrorStats(0.001, 0.01, 0.001, 0.001, 0.005),
        ErrorStats(1e-4, 1e-3, 1e-4, 1e-4, 5e-4),
        1.0,
        1.0,
        tol.prob_abs / 4,
    )
    worst = BatchComparison(
        ErrorStats(rel_l2, 0.17, 0.02, 0.01, 0.1),
        ErrorStats(2e-3, 0.01, 1e-3, 1e-3, 5e-3),
        top1,
        top5,
        tol.prob_abs / 2 if prob_abs is None else prob_abs,
    )
    return Comparison([good, worst], precision, tol)


def test_each_bound_holds_at_its_value_and_fails_past_it():
    fp32 = TOLERANCES["fp32"]
    assert comparison(fp32.rel_l2, fp32.top1, fp32.top5, fp32.prob_abs).failures() == []
    assert comparison(rel_l2=fp32.rel_l2 * 1.01).failures() == [
        f"relative L2 {fp32.rel_l2 * 1.01:.3g} > {fp32.rel_l2:g}"
    ]
    assert comparison(top1=fp32.top1 - 0.01).failures() == [f"top-1 agreement {fp32.top1 - 0.01:.2%} < {fp32.top1:.0%}"]
    assert comparison(top5=fp32.top5 - 0.005).failures() == [
        f"top-5 agreement {fp32.top5 - 0.005:.2%} < {fp32.top5:.0%}"
    ]
    assert comparison(prob_abs=fp32.prob_abs * 1.01).failures() == [
        f"top-1 probability error {fp32.prob_abs * 1.01:.3g} > {fp32.prob_abs:g}"
    ]
    assert [f.split()[0] for f in comparison(0.5, 0.5, 0.5, 0.5).failures()] == ["relative", "top-1", "top-5", "top-1"]
    nan = float("nan")
    lone = comparison(nan, nan, nan, nan)
    assert len(Comparison(lone.batches[1:], "fp32", fp32).failures()) == 4  # NaN fails every bound


def test_describe_and_extra_info_exactly():
    tol = TOLERANCES["fp32"]
    passing = comparison()
    assert passing.passed and passing.describe() == (
        "within every tolerance (fp32; worst batch 1 of 2: relative L2 0.005, max |err| 0.17, top-1 100.00%, "
        "top-5 100.00%; would pass with rel. L2 <= 0.005, top-1 >= 100.00%, top-5 >= 100.00%, "
        f"prob. error <= {tol.prob_abs / 2:.3g})"
    )
    failing = comparison(rel_l2=0.03, top1=0.9, precision="fp16")
    assert not failing.passed and failing.describe().startswith(
        f"relative L2 0.03 > {TOLERANCES['fp16'].rel_l2:g}; top-1 agreement 90.00% < 99% (fp16; worst batch 1 of 2: "
    )
    info = passing.as_extra_info()
    assert info == {
        "rel_l2_error": 0.005,
        "max_abs_error": 0.17,
        "mean_abs_error": 0.02,
        "top1_agreement": 1.0,
        "top5_agreement": 1.0,
        "errors": {
            "precision": "fp32",
            "logits": {"rel_l2": 0.005, "max_abs": 0.17, "mean_abs": 0.02, "median_abs": 0.01, "p99_abs": 0.1},
            "probabilities": {"rel_l2": 2e-3, "max_abs": 0.01, "mean_abs": 1e-3, "median_abs": 1e-3, "p99_abs": 5e-3},
            "top1_probability_abs": tol.prob_abs / 2,
            "tolerance": dataclasses.asdict(tol),
            "would_pass_with": {
                "rel_l2": 0.005,
                "top1": 1.0,
                "top5": 1.0,
                "prob_abs": tol.prob_abs / 2,
                "tie_margin": tol.tie_margin,
            },
            "worst_batch": 1,
            "per_batch": [
                {"rel_l2": 0.001, "max_abs": 0.01, "top1": 1.0, "top5": 1.0},
                {"rel_l2": 0.005, "max_abs": 0.17, "top1": 1.0, "top5": 1.0},
            ],
        },
    }
