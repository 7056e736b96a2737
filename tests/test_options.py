"""Options, usage errors and skip reasons: parsed in process (fast, every default and
bound), and through real pytest runs for what a user sees (exit code, one line)."""

import json
import os
import sys
from pathlib import Path

import pytest
import torchvision  # noqa: F401  (and torch) before any test: pytester forgets the modules a test imports,

# and torch's extension cannot be imported a second time in one process
from fixtures.options import backend_problem, backend_unavailable, check_costly
from fixtures.session import session_of
from trtbench.gpu.cuda import no_device_reason

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ["-p", "fixtures.options", "-p", "fixtures.session", "-p", "fixtures.model", "-p", "fixtures.engines"]
NO_GPU = no_device_reason() is not None


@pytest.fixture(autouse=True)
def _suite_importable(monkeypatch):
    """Subprocess runs import the suite from the repo root, as pytest.ini's pythonpath does."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


@pytest.fixture
def parse(pytester):
    """The suite's options as the plugin parses them, in this process, with the costly checks
    that run once a selected test needs the suite."""

    def parse(*args):
        options = session_of(pytester.parseconfigure("-p", "fixtures.options", "-p", "fixtures.session", *args)).options
        check_costly(options)
        return options

    return parse


@pytest.fixture
def run(pytester):
    pytester.makepyfile(test_dummy="def test_ok():\n    pass\n")

    def run(*args):
        return pytester.runpytest_subprocess(*PLUGINS, *args)

    return run


def test_defaults_are_the_tutorials(parse):
    o = parse()
    assert (o.model, o.batch_size, o.batches, o.rounds, o.warmup_rounds, o.data_seed) == (
        "resnet18",
        128,
        10,
        25,
        3,
        10088,
    )
    assert (o.ordering_tolerance, o.contexts, o.weights, o.batch_sweep, o.regression_baseline) == (
        0.05,
        2,
        None,
        (),
        None,
    )
    assert o.backends == ("tensorrt", "torch") and o.requested_backends is False
    assert o.max_aux_streams is None and not o.rebuild_engines
    assert o.engine_cache_dir.name == "engines" and o.reference_cache_dir.name == "reference"


def test_values_are_parsed(parse, tmp_path):
    o = parse(
        "--batch-size",
        "48",
        "--batches",
        "2",
        "--rounds",
        "1",
        "--warmup-rounds",
        "0",
        "--data-seed",
        "0",
        "--ordering-tolerance",
        "0",
        "--contexts",
        "1",
        "--max-aux-streams",
        "0",
        "--batch-sweep",
        "32,1,8",
        "--model",
        "resnet50",
        "--engine-cache-dir",
        str(tmp_path / "e"),
        "--rebuild-engines",
    )
    assert (o.batch_size, o.batches, o.rounds, o.warmup_rounds, o.data_seed) == (48, 2, 1, 0, 0)
    assert o.ordering_tolerance == 0.0 and o.contexts == 1 and o.max_aux_streams == 0 and o.rebuild_engines
    assert o.batch_sweep == (1, 8, 32) and o.model == "resnet50" and o.engine_cache_dir == tmp_path / "e"
    assert parse("--ordering-tolerance", "0.999").ordering_tolerance == 0.999
    assert parse("--batch-size", "4096", "--batches", "1").batch_size == 4096  # the largest allowed


@pytest.mark.parametrize(
    "args,expected",
    [
        (["--batch-size", "0"], "--batch-size must be an integer from 1 to 4096, got 0"),
        (["--batch-size", "big"], "--batch-size must be an integer from 1 to 4096, got 'big'"),
        (["--batch-size", "4097"], "--batch-size must be an integer from 1 to 4096, got 4097"),
        (
            ["--engine-cache-dir", ""],
            "--engine-cache-dir '': empty; give a writable folder (default: .cache/ in the project)",
        ),
        (
            ["--reference-cache-dir", ""],
            "--reference-cache-dir '': empty; give a writable folder (default: .cache/ in the project)",
        ),
        (["--regression-baseline", ""], "--regression-baseline '': empty; give a saved run's JSON or 'latest'"),
        (["--batches", "0"], "--batches must be an integer from 1 to 1000, got 0"),
        (["--rounds", "0"], "--rounds must be an integer from 1 to 10000, got 0"),
        (["--warmup-rounds", "-1"], "--warmup-rounds must be an integer from 0 to 10000, got -1"),
        (["--data-seed", "-1"], "--data-seed must be an integer >= 0, got -1"),
        (["--contexts", "0"], "--contexts must be an integer from 1 to 64, got 0"),
        (["--contexts", "1000000"], "--contexts must be an integer from 1 to 64, got 1000000"),
        (["--rounds", "1000000000"], "--rounds must be an integer from 1 to 10000, got 1000000000"),
        (["--batches", "100000000"], "--batches must be an integer from 1 to 1000, got 100000000"),
        (["--max-aux-streams", "-1"], "--max-aux-streams must be an integer >= 0, got -1"),
        (["--ordering-tolerance", "x"], "--ordering-tolerance must be a fraction in [0, 1)"),
        (["--ordering-tolerance", "1"], "--ordering-tolerance must be a fraction in [0, 1) such as 0.05, got '1'"),
        (["--ordering-tolerance", "-0.01"], "got '-0.01'"),
        (["--batch-sweep", "1,,8"], "--batch-sweep must be a comma-separated list of distinct batch sizes"),
        (["--batch-sweep", "0,8"], "got '0,8'"),
        (["--batch-sweep", "8,8"], "got '8,8'"),
        (["--batch-sweep", "4097"], "from 1 to 4096"),
        (["--host-isolation", "threads"], "--host-isolation threads: not a level; allowed: off, process"),
    ],
)
def test_bad_values_are_usage_errors_naming_the_option(parse, args, expected):
    with pytest.raises(pytest.UsageError) as info:
        parse(*args)
    message = str(info.value)
    assert message.startswith(expected) if expected.startswith("--") else expected in message


@pytest.mark.parametrize(
    "model,expected",
    [
        ("resnet19", "--model resnet19: unknown; allowed: one of the"),
        ("fasterrcnn_resnet50_fpn", "--model fasterrcnn_resnet50_fpn: not an image classifier; allowed:"),
    ],
)
def test_a_model_that_is_not_a_classifier_is_a_usage_error(parse, model, expected):
    with pytest.raises(pytest.UsageError, match="^" + expected.replace("(", r"\(")):
        parse("--model", model)


def test_weights_must_be_a_readable_state_dict_of_the_model(parse, tmp_path):
    with pytest.raises(pytest.UsageError, match="--weights /nonexistent/r18.pt: not a readable file"):
        parse("--weights", "/nonexistent/r18.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(pytest.UsageError, match=f"--weights {bad}: not a file torch.load can read"):
        parse("--weights", str(bad))


def test_unwritable_cache_dir(parse, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(pytest.UsageError, match="--engine-cache-dir .*: not a writable directory"):
        parse("--engine-cache-dir", str(blocker / "engines"))
    with pytest.raises(pytest.UsageError, match="--reference-cache-dir .*: not a writable directory"):
        parse("--reference-cache-dir", str(blocker / "ref"))


def test_a_regression_baseline_is_checked_before_any_benchmark(parse, tmp_path):
    with pytest.raises(pytest.UsageError, match="^--regression-baseline: /nonexistent.json: no such file; give a "):
        parse("--regression-baseline", "/nonexistent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(pytest.UsageError, match="not valid JSON"):
        parse("--regression-baseline", str(bad))
    assert parse("--regression-baseline", "latest").regression_baseline == "latest"


@pytest.mark.skipif(not NO_GPU, reason="checks a machine without a GPU; this one has one")
@pytest.mark.parametrize("named", ["torch", "tensorrt", "all"])
def test_a_named_backend_that_cannot_run_is_a_usage_error_saying_what_can(parse, named):
    with pytest.raises(pytest.UsageError) as info:
        parse("--backend", named)
    message = str(info.value)
    assert message.startswith(f"--backend {named}: cannot run here: ") and "\n" not in message
    assert "nothing can run on this machine" in message  # neither backend runs without a GPU
    if named != "tensorrt":
        assert "torch: no NVIDIA GPU or driver found" in message


def test_what_can_run_is_named_when_one_backend_can(parse, monkeypatch):
    import fixtures.options as options

    monkeypatch.setattr(options, "backend_problem", lambda b: None if b == "torch" else "tensorrt not installed")
    with pytest.raises(
        pytest.UsageError,
        match="^--backend tensorrt: cannot run here: tensorrt: tensorrt not installed; allowed here: --backend torch$",
    ):
        parse("--backend", "tensorrt")
    o = parse("--backend", "torch")
    assert o.backends == ("torch",) and o.requested_backends


def test_backend_problems_name_the_software_then_the_gpu():
    assert backend_problem("tensorrt") == backend_unavailable("tensorrt") or backend_unavailable("tensorrt") is None
    if backend_unavailable("torch") is None:
        assert backend_problem("torch") == no_device_reason()
    with pytest.raises(KeyError):
        backend_unavailable("onnx")


# ---------------------------------------------------------------- what a user sees


def test_a_usage_error_is_exit_4_and_one_line(run):
    result = run("--batch-size", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "--batch-size must be an integer from 1 to 4096, got 0" in err and "Traceback" not in err


@pytest.mark.skipif(not NO_GPU, reason="checks a machine without a GPU; this one has one")
def test_naming_a_backend_on_a_machine_without_gpu_stops_the_run(run):
    result = run("--backend", "torch")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--backend torch: cannot run here: torch: no NVIDIA GPU or driver found" in result.stderr.str()


def test_weights_of_another_architecture_are_one_line(run, pytester):
    import torch

    path = pytester.path / "r34.pt"
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), path)
    result = run("--weights", str(path))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    line = next(x for x in result.stderr.lines if "--weights" in x)
    assert "does not fit resnet18" in line and "0 missing" in line and "unexpected (layer1.2." in line
    assert len(line) < 400


def test_a_model_module_that_cannot_import_is_a_usage_error(pytester, monkeypatch):
    options = session_of(pytester.parseconfigure("-p", "fixtures.options", "-p", "fixtures.session")).options
    monkeypatch.setitem(sys.modules, "trtbench.model", None)  # its import now raises ImportError
    with pytest.raises(pytest.UsageError) as caught:
        check_costly(options)
    message = str(caught.value)
    assert message.startswith(
        "the model code (trtbench.model, with torch and torchvision) cannot be imported: "
        "ModuleNotFoundError: import of trtbench.model halted"
    )
    assert message.endswith(": reinstall with README's set-up command")


def test_a_cuda_layer_that_cannot_import_is_a_reason_not_a_traceback(monkeypatch):
    monkeypatch.setitem(sys.modules, "trtbench.gpu.cuda", None)
    assert backend_problem("torch") == (
        "the CUDA layer (trtbench.gpu.cuda, with cuda-bindings) cannot be imported: "
        "ModuleNotFoundError: import of trtbench.gpu.cuda halted; None in sys.modules"
    )


@pytest.mark.parametrize(
    "package, shown",
    [
        # a half-finished install: torch's package is there, its shared libraries are not
        (
            "raise OSError('libtorch_global_deps.so: cannot open shared object file')\n",
            "OSError: libtorch_global_deps.so",
        ),
        # a file cut short when the disk filled up
        ("def _load(:\n", "SyntaxError: "),
    ],
)
def test_a_torch_that_cannot_load_is_one_line(run, pytester, monkeypatch, package, shown):
    fake = pytester.mkdir("broken")
    (fake / "torch").mkdir()
    (fake / "torch" / "__init__.py").write_text(package)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(fake), os.environ["PYTHONPATH"]]))
    result = run("--model", "mobilenet_v3_small")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    lines = [x for x in result.stderr.lines if "cannot be imported" in x]
    assert len(lines) == 1 and shown in lines[0] and lines[0].endswith("set-up command")
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_options_are_in_help(run):
    out = run("--help").stdout.str()
    for option in (
        "--backend",
        "--model",
        "--batch-size",
        "--batches",
        "--rounds",
        "--engine-cache-dir",
        "--rebuild-engines",
        "--weights",
        "--ordering-tolerance",
        "--contexts",
        "--batch-sweep",
        "--regression-baseline",
    ):
        assert option in out


def test_skip_reasons_are_in_the_report(pytester):
    """GPU tests skip with the GPU's reason; TensorRT ones with 'tensorrt not installed'; neither passes."""
    pytester.makepyfile(
        test_gpu="""
import pytest

@pytest.mark.gpu
def test_needs_gpu():
    pass

@pytest.mark.parametrize("backend", ["tensorrt"])
def test_trt(backend):
    pass
"""
    )
    result = pytester.runpytest_subprocess(*PLUGINS, "-rs")
    report = result.stdout.str()
    if NO_GPU:
        assert "SKIPPED" in report and "no NVIDIA GPU or driver found (cuda" in report
    if backend_unavailable("tensorrt"):
        assert "tensorrt not installed" in report
    if NO_GPU and backend_unavailable("tensorrt"):
        result.assert_outcomes(skipped=2)  # neither passes vacuously


MULTI_PROFILE_TEST = """
import pytest
from trtbench.catalogue import CASES

@pytest.mark.parametrize("backend", ["tensorrt"])
@pytest.mark.parametrize("case", [c for c in CASES if c.id in ("multi_profile-two_profiles", "baseline")],
                         ids=lambda c: c.id)
def test_approach(case, backend, options):
    pass
"""


def test_a_backend_that_cannot_run_never_blocks_another(run, pytester, monkeypatch):
    """--batch-size 48 (or 1) with TensorRT absent: the multi-profile check does not stop the run."""
    pytester.makepyfile(test_mp=MULTI_PROFILE_TEST)
    for batch in ("48", "1"):
        assert run("--batch-size", batch).ret != pytest.ExitCode.USAGE_ERROR


def test_batch_size_1_with_tensorrt_and_multi_profile_selected_is_a_usage_error(pytester, monkeypatch):
    import fixtures.options as options

    monkeypatch.setattr(options, "backend_problem", lambda b: None)
    pytester.makepyfile(test_mp=MULTI_PROFILE_TEST)
    monkeypatch.setattr(options, "backend_unavailable", lambda b: "absent here (test)")
    monkeypatch.setattr("fixtures.session.check_costly", lambda options: None)  # the model's checks: not the point
    result = pytester.runpytest_inprocess("-p", "fixtures.options", "-p", "fixtures.session", "--batch-size", "1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result = pytester.runpytest_inprocess(
        "-p", "fixtures.options", "-p", "fixtures.session", "--batch-size", "1", "-k", "baseline"
    )
    assert result.ret != pytest.ExitCode.USAGE_ERROR  # deselected: fine


CTRL_C_TEST = """
import os, signal

def test_interrupted(benchmark):
    def round_():
        os.kill(os.getpid(), signal.SIGINT)
    benchmark.pedantic(round_, rounds=5, iterations=1)

def test_never_reached():
    pass
"""


@pytest.mark.parametrize("json_file", [True, False], ids=["with-json", "without-json"])
def test_ctrl_c_during_a_benchmark_is_one_line_and_saves_nothing(pytester, json_file):
    pytester.makepyfile(test_ctrl_c=CTRL_C_TEST)
    storage = pytester.path / "storage"
    json_args = ["--benchmark-json", str(pytester.path / "out.json")] if json_file else []
    result = pytester.runpytest_subprocess(
        *PLUGINS, "--benchmark-autosave", f"--benchmark-storage=file://{storage}", *json_args
    )
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    stop_lines = [line for line in out.splitlines() if line.startswith("!!!")]
    assert stop_lines and all("Interrupted: Ctrl-C: the run stopped, nothing was saved" in x for x in stop_lines), out
    assert "Traceback" not in out and "Error" not in out and "KeyboardInterrupt" not in out
    assert "test_ctrl_c.py:" not in out  # no line of code: the user pressed Ctrl-C and needs only the one line
    assert not list(storage.rglob("*.json")) and not (pytester.path / "out.json").exists()


REGRESSION_CONFTEST = """
import json, pytest
from fixtures.session import session_of

def samples(median, n=25, seed=0):
    import numpy as np
    return list(median * (1 + 0.005 * np.random.default_rng(seed).standard_normal(n)))

@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    bench = session_of(session.config)
    spec = json.loads(session.config.getoption("--fake-results"))
    bench.selected |= set(spec)
    for name, ms in spec.items():
        if ms is None:
            continue  # selected, not measured (skipped)
        bench.results[name] = {"batch_size": 128, "ms_per_batch": ms,
                               "samples": {"wall": samples(ms), "compute": samples(ms * 0.8)}}
        bench.remeasure[name] = lambda rounds, ms=ms: {"wall": samples(ms, rounds, 9),
                                                       "compute": samples(ms * 0.8, rounds, 9)}

def pytest_addoption(parser):
    parser.addoption("--fake-results")
"""


@pytest.fixture
def in_run_check(pytester):
    """benchmarks/test_regressions.py over results a conftest plants (what a GPU run would record)."""
    pytester.makeconftest(REGRESSION_CONFTEST)
    pytester.makepyfile(test_check=(ROOT / "benchmarks" / "test_regressions.py").read_text())
    storage = pytester.path / "storage"

    def check(results, *args):
        return pytester.runpytest_subprocess(
            *PLUGINS, f"--benchmark-storage=file://{storage}", "-s", "--fake-results", json.dumps(results), *args
        )

    return check, storage


def test_in_run_latest_with_no_saved_run_passes_with_a_note(in_run_check):
    check, _ = in_run_check
    result = check({"test_approach[torch-fp16]": 6.0}, "--regression-baseline", "latest")
    result.assert_outcomes(passed=1)
    assert "nothing to compare, passing (a first run" in result.stdout.str()


def test_in_run_check_flags_a_regression_and_keeps_deselected_and_unmeasured_apart(in_run_check, tmp_path):
    from fixtures.session import machine_details
    from tests.helpers import saved_run
    from trtbench.runs import storage_tag

    check, storage = in_run_check
    folder = storage / storage_tag(machine_details()) / "Linux"
    folder.mkdir(parents=True)
    saved_run(folder / "0001_base.json", {"fp16": 6.0, "overlap": 5.0}, gpu=machine_details()["gpu_name"])
    result = check(
        {"test_approach[torch-fp16]": 8.0, "test_approach[torch-overlap]": 5.0}, "--regression-baseline", "latest"
    )
    result.assert_outcomes(failed=1)
    assert "regressed: test_approach[torch-fp16] wall time per batch" in result.stdout.str()
    # overlap deselected in this session: not compared, not a failure
    result = check({"test_approach[torch-fp16]": 6.0}, "--regression-baseline", "latest")
    result.assert_outcomes(passed=1)
    assert "not compared (deselected in this run): 1 test(s)" in result.stdout.str()
    # overlap selected but not measured (skipped): the baseline had it, so it is not a pass
    result = check(
        {"test_approach[torch-fp16]": 6.0, "test_approach[torch-overlap]": None}, "--regression-baseline", "latest"
    )
    result.assert_outcomes(failed=1)
    assert "lacks 1 test(s)" in result.stdout.str()


def test_in_run_check_with_nothing_measured_fails(in_run_check):
    check, _ = in_run_check
    result = check({}, "--regression-baseline", "latest")
    result.assert_outcomes(failed=1)
    assert "no benchmark was timed in this run" in result.stdout.str()


# ---------------------------------------------------------------- in process: every default, message and skip
# (each pins a behaviour a mutation test found unchecked: see mutation/run.py)

SUITE_HELP = """
TensorRT pipeline benchmarks:
  --backend={tensorrt,torch,all} backend(s) that must run: tensorrt, torch or all; one that cannot run here is a usage
      error (default: every backend; those that cannot run here are skipped with the reason)
  --model=MODEL a classifier of torchvision.models (default resnet18, as the tutorial)
  --batch-size=BATCH_SIZE images per batch (default 128, as the tutorial)
  --batches=BATCHES batches per round (default 10, as the tutorial)
  --rounds=ROUNDS timed rounds per approach, each over --batches batches (default 25)
  --warmup-rounds=WARMUP_ROUNDS untimed rounds before the timed ones (default 3)
  --data-seed=DATA_SEED seed of the input images (default 10088, as the tutorial)
  --weights=WEIGHTS a state dict (torch.save) of --model to use instead of seeded, calibrated weights
  --batch-sweep=B1,B2,... also run the baseline and the best approach at each of these batch sizes
      (latency-throughput curve in the report)
  --engine-cache-dir=ENGINE_CACHE_DIR where TensorRT engines, their metadata and the timing cache live
      (default: .cache/engines in the project)
  --reference-cache-dir=REFERENCE_CACHE_DIR where ONNX Runtime reference outputs, images and calibrated weights are
      cached (default: .cache/reference)
  --rebuild-engines build every TensorRT engine anew, ignoring the cache
  --max-aux-streams=MAX_AUX_STREAMS TensorRT builder max_aux_streams (the tutorial's --aux-stream; default TensorRT's)
  --contexts=CONTEXTS execution contexts of the multi_context approach (default 2)
  --regression-baseline=JSON|latest after the benchmarks, compare with this saved run (or the newest saved run of this
      GPU) and fail on a regression; 'latest' with no saved run yet passes with a note
  --host-isolation={off,process} process: no garbage collection in timed rounds, one torch intra-op thread, the
      process on fixed cores (default off: README, Quieter processes)
  --ordering-tolerance=ORDERING_TOLERANCE how much slower than its predecessor an approach of the chain may be
      (default 0.05)
"""


def test_help_lists_every_option_with_its_metavar_and_default_in_process(pytester, monkeypatch):
    """What ``pytest --help`` shows for the suite (the README's option table says the same)."""
    monkeypatch.setenv("COLUMNS", "400")
    result = pytester.runpytest_inprocess("-p", "fixtures.options", "--help")
    assert result.ret == pytest.ExitCode.OK
    assert " ".join(SUITE_HELP.split()) in " ".join(result.stdout.str().split())


def test_defaults_are_values_not_just_falsy(parse, pytester):
    o = parse()
    assert o.rebuild_engines is False
    assert o.engine_cache_dir == pytester.path / ".cache" / "engines"
    assert o.reference_cache_dir == pytester.path / ".cache" / "reference"
    assert parse("--rebuild-engines").rebuild_engines is True


def test_the_largest_sweep_batch_is_allowed(parse):
    assert parse("--batch-sweep", "4096,1").batch_sweep == (1, 4096)


def test_an_unknown_backend_is_a_usage_error(parse):
    with pytest.raises(pytest.UsageError, match=r"^--backend onnx: not a backend; allowed: tensorrt, torch, all$"):
        parse("--backend", "onnx")


def test_backend_all_runs_both_when_both_can(parse, monkeypatch):
    import fixtures.options as options

    monkeypatch.setattr(options, "backend_problem", lambda b: None)
    o = parse("--backend", "all")
    assert o.backends == ("tensorrt", "torch") and o.requested_backends is True


def test_backend_all_that_cannot_run_names_every_problem(parse, monkeypatch):
    import fixtures.options as options

    monkeypatch.setattr(options, "backend_problem", lambda b: f"{b} is missing (test)")
    with pytest.raises(pytest.UsageError) as info:
        parse("--backend", "all")
    assert str(info.value) == (
        "--backend all: cannot run here: tensorrt: tensorrt is missing (test); torch: torch is "
        "missing (test); nothing can run on this machine"
    )


def test_weights_are_kept_as_a_path_once_they_load(parse, tmp_path, monkeypatch):
    import trtbench.model

    loaded = []
    monkeypatch.setattr(trtbench.model, "load_weights", lambda spec, path: loaded.append((spec.name, path)))
    weights = tmp_path / "r18.pt"
    weights.write_bytes(b"state dict")
    assert parse("--weights", str(weights)).weights == weights
    assert loaded == [("resnet18", weights)]
    with pytest.raises(pytest.UsageError, match=f"^--weights {tmp_path}: not a readable file"):
        parse("--weights", str(tmp_path))  # a folder is readable, but not a file


def test_an_unwritable_cache_dir_says_why_in_words(parse, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(pytest.UsageError) as info:
        parse("--engine-cache-dir", str(blocker / "engines"))
    assert str(info.value) == f"--engine-cache-dir {blocker / 'engines'}: not a writable directory (Not a directory)"


def test_item_backend_is_the_backend_parameter_when_it_names_one():
    import types

    from fixtures.options import _item_backend

    def item(**params):
        return types.SimpleNamespace(callspec=types.SimpleNamespace(params=params))

    assert _item_backend(item(backend="tensorrt", case="fp16")) == "tensorrt"
    assert _item_backend(item(backend="torch")) == "torch"
    assert _item_backend(item(backend="onnx")) is None
    assert _item_backend(item(case="fp16")) is None
    assert _item_backend(types.SimpleNamespace()) is None  # not parametrized


SKIP_TEST = """
import pytest

def test_plain():
    pass

@pytest.mark.tensorrt
def test_marked():
    pass

@pytest.mark.parametrize("backend", ["tensorrt", "torch", "other"])
def test_param(backend):
    pass
"""


@pytest.mark.parametrize("tensorrt_here", [False, True])
def test_skips_follow_the_backend_and_the_tensorrt_marker_only(pytester, monkeypatch, tensorrt_here):
    import fixtures.options as options

    monkeypatch.setattr(
        options, "backend_unavailable", lambda b: None if b == "torch" or tensorrt_here else "tensorrt absent (test)"
    )
    pytester.makepyfile(test_skips=SKIP_TEST)
    result = pytester.runpytest_inprocess("-p", "fixtures.options", "-rs")
    if tensorrt_here:
        result.assert_outcomes(passed=5)
    else:
        result.assert_outcomes(passed=3, skipped=2)  # test_plain, torch and other run; the two tensorrt ones skip
        assert result.stdout.str().count("tensorrt absent (test)") == 2


def test_other_plugins_can_join_the_suites_option_group_by_name(pytester, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    pytester.makeconftest("""
def pytest_addoption(parser):
    parser.getgroup("trt-pipeline-bench").addoption("--extra-knob", help="a plugin's own knob")
""")
    result = pytester.runpytest_inprocess("-p", "fixtures.options", "--help")
    text = " ".join(result.stdout.str().split())
    assert "(default 0.05) --extra-knob=EXTRA_KNOB a plugin's own knob" in text  # in the same group, right after ours


def test_saved_runs_record_the_model_and_its_weights(tmp_path):
    import types

    from fixtures.session import BenchSession, machine_details
    from trtbench.model import weights_identity

    details = machine_details("resnet50", "sha256:0123456789abcdef")
    assert (details["model"], details["weights"]) == ("resnet50", "sha256:0123456789abcdef")
    assert details["nvidia_driver"] and details["trtbench_schema"] == 2
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"state dict")
    for given in (None, weights):
        info: dict = {}
        session = BenchSession.__new__(BenchSession)  # its hooks without a pytest run
        session.options = types.SimpleNamespace(model="resnet34", weights=given)
        session.pytest_benchmark_update_machine_info(info)
        assert (info["model"], info["weights"]) == ("resnet34", weights_identity(given))


def test_batches_that_cannot_fit_in_host_memory_are_refused_with_what_fits(parse, monkeypatch):
    import fixtures.options as options

    monkeypatch.setattr(options, "_available_host_bytes", lambda: 10 * 2**30)
    with pytest.raises(pytest.UsageError) as info:
        parse("--batches", "1000")
    assert str(info.value) == (
        "--batches 1000 with --batch-size 128: the images need 179.4 GiB of host memory, "
        "10.0 GiB are available; at most --batches 55 fits"
    )
    assert parse("--batches", "55").batches == 55
    monkeypatch.setattr(options, "_available_host_bytes", lambda: 2**20)
    with pytest.raises(pytest.UsageError, match="a smaller --batch-size is needed$"):
        parse("--batches", "1")


def test_a_unit_test_run_pays_for_no_costly_check(pytester, monkeypatch):
    """A run that selects none of the suite's tests imports neither torch nor the GPU layer."""
    pytester.makepyfile(test_plain="def test_ok():\n    pass\n")
    checked = []
    monkeypatch.setattr("fixtures.session.check_costly", lambda options: checked.append(options))
    result = pytester.runpytest_inprocess("-p", "fixtures.options", "-p", "fixtures.session", "--batch-size", "64")
    result.assert_outcomes(passed=1)
    assert checked == []
    assert not (pytester.path / ".cache").exists()


def test_the_default_host_isolation_is_off_as_a_value(parse):
    assert parse().host_isolation == "off"
    assert parse("--host-isolation", "process").host_isolation == "process"


def test_the_suites_markers_are_registered_with_what_they_mean(pytester):
    config = pytester.parseconfigure("-p", "fixtures.options")
    assert {
        "gpu: needs a CUDA device (skipped with the reason where there is none)",
        "tensorrt: needs TensorRT (skipped with the reason where it is not installed)",
        "slow: takes more than a few seconds on a CPU or minutes on a GPU",
    } <= set(config.getini("markers"))


def test_available_host_memory_is_meminfos_memavailable_in_bytes(monkeypatch):
    import fixtures.options as options

    opened, text = [], {}

    class Meminfo:
        def __init__(self, path):
            opened.append(path)

        def read_text(self):
            if isinstance(text["now"], Exception):
                raise text["now"]
            return text["now"]

    monkeypatch.setattr(options, "Path", Meminfo)
    text["now"] = "MemTotal:       16303412 kB\nMemFree:          204800 kB\nMemAvailable:    2048000 kB\n"
    assert options._available_host_bytes() == 2048000 * 1024 and opened == ["/proc/meminfo"]
    for unknown in ("MemTotal:       16303412 kB\n", "MemAvailable: many kB\n", "MemAvailable:\n", OSError("no /proc")):
        text["now"] = unknown  # an old kernel, a format this code does not know, no /proc: no limit known
        assert options._available_host_bytes() is None


def test_batches_that_fit_host_memory_exactly_are_allowed(parse, monkeypatch):
    import fixtures.options as options
    from trtbench.model import model_spec

    size = model_spec("resnet18").image_size
    per_batch = 128 * 3 * size * size * options.HOST_BYTES_PER_VALUE
    monkeypatch.setattr(options, "_available_host_bytes", lambda: 10 * per_batch)
    assert parse("--batches", "10").batches == 10
    monkeypatch.setattr(options, "_available_host_bytes", lambda: 10 * per_batch - 1)
    with pytest.raises(pytest.UsageError, match="at most --batches 9 fits$"):
        parse("--batches", "10")


def test_the_costly_checks_keep_what_they_loaded(parse, tmp_path, monkeypatch):
    import trtbench.model
    from tests.helpers import saved_run

    plain = check_costly(parse())
    assert plain.spec.name == "resnet18" and plain.weights_state is None and plain.baseline is None
    monkeypatch.setattr(trtbench.model, "load_weights", lambda spec, path: {"loaded": (spec.name, path)})
    weights = tmp_path / "r18.pt"
    weights.write_bytes(b"state dict")
    assert check_costly(parse("--weights", str(weights))).weights_state == {"loaded": ("resnet18", weights)}
    baseline = saved_run(tmp_path / "0001_base.json")
    assert check_costly(parse("--regression-baseline", str(baseline))).baseline.path == baseline


def test_the_multi_profile_check_asks_about_tensorrt_and_passes_over_plain_tests(parse, monkeypatch):
    import types

    import fixtures.options as options
    from trtbench.catalogue import CASES

    asked = []
    monkeypatch.setattr(options, "backend_problem", lambda b: asked.append(b) or (None if b == "tensorrt" else "?"))
    two_profiles = next(c for c in CASES if c.id == "multi_profile-two_profiles")
    plain = types.SimpleNamespace(name="test_plain")  # a test that is not parametrized
    mp = types.SimpleNamespace(
        name="test_approach[tensorrt-multi_profile-two_profiles]",
        callspec=types.SimpleNamespace(params={"backend": "tensorrt", "case": two_profiles}),
    )
    options.check_multi_profile(parse("--batch-size", "2"), [plain, mp])
    assert asked == ["tensorrt"]
    with pytest.raises(pytest.UsageError) as info:
        options.check_multi_profile(parse("--batch-size", "1"), [plain, mp])
    assert str(info.value).endswith(
        " (selected: test_approach[tensorrt-multi_profile-two_profiles]; deselect it with -k)"
    ) and str(info.value).startswith("--batch-size 1")


def test_which_options_make_the_costly_checks_run_whatever_is_selected(parse):
    import dataclasses

    from fixtures.options import named_costly_options

    plain = parse()
    assert not named_costly_options(plain)
    for change in (
        {"requested_backends": True},
        {"weights": Path("w.pt")},
        {"regression_baseline": "latest"},
        {"model": "resnet50"},
    ):
        assert named_costly_options(dataclasses.replace(plain, **change)), change


def test_tests_without_fixtures_do_not_need_the_suite():
    import types

    from fixtures.options import needs_the_suite

    assert not needs_the_suite([object(), types.SimpleNamespace(fixturenames=["tmp_path"])])
    assert needs_the_suite([object(), types.SimpleNamespace(fixturenames=["tmp_path", "engines"])])
