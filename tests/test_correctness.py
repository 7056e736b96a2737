"""The comparison every approach's outputs go through, and its power: on the default
model's real outputs, the bugs the check exists for must fail and the truth must pass."""

import copy

import numpy as np
import pytest
import torch

from trtbench import model as m
from trtbench.correctness import TOLERANCES, ErrorStats, PipelineOutputs, Tolerance, compare, softmax, top_k

BATCH = 32


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    return m.build_model(m.model_spec("resnet18"), cache_dir=tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def inputs():
    return [m.normalize(m.make_images(10088, i, BATCH)) for i in range(2)]


@pytest.fixture(scope="module")
def reference(net, inputs):
    """The default model's logits on two batches (what ONNX Runtime computes: see test_model)."""
    with torch.no_grad():
        return [{"output0": net(torch.from_numpy(x)).numpy()} for x in inputs]


def as_outputs(logits_batches):
    """What a correct pipeline produces from these logits (host post-processing)."""
    return [PipelineOutputs(lg.astype(np.float32), softmax(lg).argmax(1), softmax(lg).max(1).astype(np.float32))
            for lg in logits_batches]


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
    assert not result.passed and result.failures() == [f"top-1 probability error {result.prob_abs:.3g} > 0.03"]


def test_gpu_top5_is_checked_against_the_graphs_own_reference(reference):
    """A graph with top-5 outputs: its classes and probabilities against ONNX Runtime's run of it."""
    logits = logits_of(reference)
    ref = [dict(r, top5_class=top_k(r["output0"]).astype(np.int32),
                top5_prob=np.take_along_axis(softmax(r["output0"]), top_k(r["output0"]), 1)) for r in reference]
    good = [PipelineOutputs(lg, r["top5_class"][:, 0], r["top5_prob"][:, 0], r["top5_class"]) for lg, r in zip(logits, ref)]
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
    logits[0] *= 1.01
    result = compare(as_outputs(logits), reference, "fp32")
    assert result.required == Tolerance(result.rel_l2, result.top1, result.top5, result.prob_abs)
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
        compare([PipelineOutputs(outputs[0].logits, outputs[0].classes[:3], outputs[0].max_probs)], reference[:1], "fp32")


def test_tolerances_are_ordered_and_below_the_power_perturbations():
    fp32, fp16 = TOLERANCES["fp32"], TOLERANCES["fp16"]
    assert fp32.rel_l2 < fp16.rel_l2 < 0.1 * 0.5 and fp32.rel_l2 < 0.02 * 0.5
    assert fp32.top1 >= fp16.top1 and fp32.top5 >= fp16.top5 and fp32.prob_abs <= fp16.prob_abs
