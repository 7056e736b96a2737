"""Option handling, usage errors and skip reasons, through real pytest runs (pytester)."""

import os
from pathlib import Path

import pytest

from fixtures.options import backend_unavailable

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ["-p", "fixtures.options", "-p", "fixtures.model", "-p", "fixtures.engines", "-p", "fixtures.bench"]


@pytest.fixture(autouse=True)
def _suite_importable(monkeypatch):
    """Subprocess runs import the suite from the repo root, as pytest.ini's pythonpath does."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


@pytest.fixture
def run(pytester):
    pytester.makepyfile(test_dummy="def test_ok():\n    pass\n")

    def run(*args):
        return pytester.runpytest_subprocess(*PLUGINS, *args)

    return run


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--batch-size", "0"], "--batch-size must be an integer >= 1, got 0"),
        (["--batch-size", "big"], "--batch-size must be an integer >= 1, got 'big'"),
        (["--batches", "-1"], "--batches must be an integer >= 1"),
        (["--rounds", "0"], "--rounds must be an integer >= 1"),
        (["--contexts", "0"], "--contexts must be an integer >= 1"),
        (["--backend", "onnx"], "argument --backend: invalid choice: 'onnx'"),
        (["--ordering-tolerance", "x"], "--ordering-tolerance must be a fraction"),
        (["--weights", "/nonexistent/r18.pt"], "--weights /nonexistent/r18.pt: not a readable file"),
    ],
)
def test_bad_values_are_usage_errors_naming_the_option(run, args, expected):
    result = run(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert expected in result.stderr.str()


def test_weights_that_are_not_a_resnet18_state_dict(run, pytester):
    bad = pytester.path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    result = run("--weights", str(bad))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"--weights {bad}: not a ResNet-18 state dict" in result.stderr.str()


def test_weights_state_dict_with_wrong_shapes(run, pytester):
    import torch

    path = pytester.path / "wrong.pt"
    torch.save({"fc.weight": torch.zeros(10, 512)}, path)
    result = run("--weights", str(path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR and "not a ResNet-18 state dict" in result.stderr.str()


def test_unwritable_cache_dir(run, pytester):
    blocker = pytester.path / "a_file"
    blocker.write_text("")
    result = run("--engine-cache-dir", str(blocker / "engines"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"--engine-cache-dir {blocker / 'engines'}: not a writable directory" in result.stderr.str()


@pytest.mark.skipif(backend_unavailable("tensorrt") is None, reason="TensorRT is installed here")
def test_asking_for_a_missing_backend_is_an_error_not_a_skip(run):
    result = run("--backend", "tensorrt")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--backend tensorrt: not available on this machine: tensorrt (tensorrt not installed" in result.stderr.str()


def test_good_options_run(run):
    result = run("--batch-size", "4", "--batches", "2", "--backend", "torch")
    result.assert_outcomes(passed=1)


def test_options_are_in_help(run):
    out = run("--help").stdout.str()
    for option in ("--backend", "--batch-size", "--batches", "--rounds", "--engine-cache-dir",
                   "--rebuild-engines", "--weights", "--ordering-tolerance", "--contexts"):
        assert option in out


def test_skip_reasons_are_in_the_report(pytester):
    """GPU tests skip with the CUDA runtime's reason; TensorRT ones with 'tensorrt not installed'."""
    from trtbench.cuda import no_device_reason

    pytester.makepyfile(test_gpu="""
import pytest

@pytest.mark.gpu
def test_needs_gpu():
    pass

@pytest.mark.parametrize("backend", ["tensorrt"])
def test_trt(backend):
    pass
""")
    result = pytester.runpytest_subprocess(*PLUGINS, "-rs")
    report = result.stdout.str()
    if no_device_reason():
        assert "SKIPPED" in report and "no CUDA device: cudaGetDeviceCount returned" in report
    if backend_unavailable("tensorrt"):
        assert "tensorrt not installed" in report
    if no_device_reason() and backend_unavailable("tensorrt"):
        result.assert_outcomes(skipped=2)  # neither passes vacuously


MULTI_PROFILE_TEST = """
import pytest

@pytest.mark.parametrize("backend", ["tensorrt"])
@pytest.mark.parametrize("case", ["multi_profile-two_profiles", "baseline"])
def test_approach(case, backend):
    pass
"""


def test_batch_outside_the_multi_profile_range_is_a_usage_error_before_any_build(run, pytester):
    pytester.makepyfile(test_mp=MULTI_PROFILE_TEST)
    result = run("--batch-size", "256")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--batch-size 256 is outside the multi-profile engine's second profile 64..192" in result.stderr.str()
    # deselecting the multi-profile case makes the same options fine
    assert run("--batch-size", "256", "-k", "baseline").ret != pytest.ExitCode.USAGE_ERROR
