"""The comparison every approach's outputs go through."""

import numpy as np
import pytest

from trtbench.correctness import TOLERANCES, compare


@pytest.fixture
def reference():
    rng = np.random.default_rng(1)
    return [rng.standard_normal((128, 1000)).astype(np.float32) for _ in range(3)]


def _classes(batches):
    return [b.argmax(axis=1) for b in batches]


def test_identical_outputs_pass(reference):
    outputs = [r.copy() for r in reference]
    result = compare(outputs, _classes(outputs), reference, "fp32")
    assert result.passed and result.rel_l2 == 0 and result.top1 == 1.0
    assert result.tolerance_rel_l2 == TOLERANCES["fp32"]["rel_l2"]


def test_one_perturbed_element_fails(reference):
    outputs = [r.copy() for r in reference]
    outputs[2][5, 7] += 100.0
    result = compare(outputs, _classes(outputs), reference, "fp32")
    assert not result.passed
    assert result.worst_batch == 2 and result.max_abs == pytest.approx(100.0, rel=1e-4)
    assert "relative L2" in result.describe() and "tolerance 0.002" in result.describe()


def test_an_unwritten_nan_batch_fails(reference):
    outputs = [r.copy() for r in reference]
    outputs[1][:] = np.nan
    assert not compare(outputs, _classes(outputs), reference, "fp16").passed


def test_classes_from_another_batch_fail_even_with_right_logits(reference):
    """What the tutorial's race would produce: batch i post-processed from batch i+1's output."""
    outputs = [r.copy() for r in reference]
    classes = _classes(outputs)
    classes[0] = classes[1]
    result = compare(outputs, classes, reference, "fp32")
    assert result.rel_l2 == 0 and result.top1 < 0.1 and not result.passed


def test_fp16_noise_within_fp16_tolerance_but_not_fp32(reference):
    rng = np.random.default_rng(2)
    outputs = [r + 0.01 * np.abs(r).mean() * rng.standard_normal(r.shape).astype(np.float32) for r in reference]
    assert compare(outputs, _classes(outputs), reference, "fp16").passed
    assert not compare(outputs, _classes(outputs), reference, "fp32").passed
