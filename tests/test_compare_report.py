"""Comparing saved runs and reporting them, on synthetic pytest-benchmark JSON: verdicts,
thresholds (fixed, history, fallback), refusals with one line and exit 2, and the report."""

import dataclasses
import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import CASES, MS, record, samples, saved_run, thresholds_file, trtbench
from trtbench import catalogue, cli, runs
from trtbench import compare as cmp
from trtbench import settings as st
from trtbench.cli import EXIT_INTERNAL, EXIT_PIPE_CLOSED, guarded
from trtbench.runs import Malformed, SavedRun


def run_main(*args):
    return trtbench("compare", *args)


def test_identical_code_no_regression(tmp_path, capsys):
    old, new = saved_run(tmp_path / "0001_a.json"), saved_run(tmp_path / "0002_b.json", seed=1)
    assert run_main(old, new) == 0
    out = capsys.readouterr().out
    assert "no regression" in out and "test_approach[torch-fp16]" in out and "p (Mann-Whitney)" in out
    assert out.count(" ok") >= 2 * len(CASES)  # both metrics of every test


def test_one_approach_12_percent_slower_on_wall_is_flagged_alone(tmp_path, capsys):
    slower = dict(MS, overlap=MS["overlap"] * 1.12, fp16=MS["fp16"] * 1.05)
    old = saved_run(tmp_path / "0001_a.json")
    new = saved_run(tmp_path / "0002_b.json", slower, seed=1, compute={"overlap": MS["overlap"] * 0.8})
    assert run_main(old, new, "--thresholds", thresholds_file(tmp_path)) == 1
    out = capsys.readouterr().out
    flagged = [line for line in out.splitlines() if line.rstrip().endswith("REGRESSION")]
    assert len(flagged) == 1 and "test_approach[torch-overlap]" in flagged[0] and " wall " in flagged[0]
    assert "1 regression(s): test_approach[torch-overlap] wall time per batch 6.0" in out and "+12." in out


def test_gpu_compute_3_percent_slower_is_flagged_with_a_threshold_from_history(tmp_path, capsys):
    """The fallback threshold (5%) cannot see 3%; three earlier runs of the same code can."""
    storage = tmp_path / "storage"
    storage.mkdir()
    for i in range(3):
        saved_run(storage / f"000{i + 1}_aa.json", seed=i)
    gpu = {"fp16": MS["fp16"] * 0.8 * 1.03}
    new = saved_run(storage / "0004_new.json", seed=7, compute=gpu)
    assert run_main(new, "--thresholds", thresholds_file(tmp_path)) == 1  # NEW vs the newest older run beside it
    out = capsys.readouterr().out
    flagged = [line for line in out.splitlines() if line.rstrip().endswith("REGRESSION")]
    assert len(flagged) == 1 and "torch-fp16]" in flagged[0] and " compute " in flagged[0]
    assert "history of 3 runs" in flagged[0]
    # without the history, the same change passes the fallback threshold
    lone = tmp_path / "lone"
    lone.mkdir()
    old = saved_run(lone / "0001_a.json", seed=2)
    new2 = saved_run(lone / "0002_b.json", seed=7, compute=gpu)
    assert run_main(old, new2, "--thresholds", thresholds_file(tmp_path)) == 0


def test_fixed_thresholds_win_over_history_and_fall_back_by_case_then_approach(tmp_path):
    settings = st.Settings.load(thresholds_file(tmp_path, '[fixed.compute]\ncuda_graph = 0.2\n"cuda_graph-b1" = 0.5\n'))
    history = [SavedRun.load(saved_run(tmp_path / f"{i}.json", seed=i)) for i in range(3)]
    assert st.threshold_for("test_approach[torch-cuda_graph-b1]", "compute", settings, history) == (0.5, "fixed")
    assert st.threshold_for("test_approach[torch-cuda_graph]", "compute", settings, history) == (0.2, "fixed")
    value, source = st.threshold_for("test_approach[torch-fp16]", "compute", settings, history)
    assert source == "history of 3 runs" and value >= settings.floor["compute"]
    assert st.threshold_for("test_approach[torch-fp16]", "wall", settings, history[:2]) == (0.10, "regression.toml")
    assert catalogue.case_of("test_approach[tensorrt-multi_profile-two_profiles]") == "multi_profile-two_profiles"


def test_noisy_samples_past_the_threshold_are_cant_tell_exit_3(tmp_path, capsys):
    old = saved_run(tmp_path / "0001_a.json", spread=0.4, rounds=6)
    new = saved_run(tmp_path / "0002_b.json", dict(MS, fp16=MS["fp16"] * 1.2), seed=1, spread=0.4, rounds=6)
    assert run_main(old, new) == 3
    assert "can't tell: rerun with more --rounds" in capsys.readouterr().out


@pytest.mark.parametrize(
    "field,kwargs",
    [
        ("gpu_name", {"gpu": "NVIDIA A100-SXM4-80GB"}),
        ("tensorrt", {"trt": "10.13.0"}),
        ("model", {"model": "resnet50"}),
    ],
)
def test_runs_of_another_gpu_tensorrt_or_model_are_refused(tmp_path, capsys, field, kwargs):
    old, new = saved_run(tmp_path / "a.json", **kwargs), saved_run(tmp_path / "b.json")
    assert run_main(old, new) == 2
    err = capsys.readouterr().err
    assert f"refusing to compare: {field} differs" in err and err.count("\n") == 1


def test_another_batch_size_is_refused(tmp_path):
    with pytest.raises(st.Refused, match="batch size 128 vs 64"):
        cmp.compare(
            SavedRun.load(saved_run(tmp_path / "c.json")),
            SavedRun.load(saved_run(tmp_path / "d.json", batch=64)),
            st.Settings.load(),
        )


def test_every_missing_file_is_named(tmp_path, capsys):
    assert run_main(tmp_path / "nope-old.json", tmp_path / "nope-new.json") == 2
    err = capsys.readouterr().err
    assert "nope-old.json" in err and "nope-new.json" in err and err.count("\n") == 1


def test_a_run_that_measured_nothing_is_refused(tmp_path, capsys):
    empty = tmp_path / "0002_b.json"
    empty.write_text(
        json.dumps(
            {
                "machine_info": {
                    "gpu_name": "NVIDIA H100 80GB HBM3",
                    "tensorrt": "absent",
                    "model": "resnet18",
                    "trtbench_schema": 2,
                },
                "benchmarks": [],
            }
        )
    )
    assert run_main(saved_run(tmp_path / "0001_a.json"), empty) == 2
    assert "measured nothing" in capsys.readouterr().err


def with_samples(path, metric, values):
    """``path`` with every benchmark's ``metric`` samples replaced by ``values``."""
    doc = json.loads(path.read_text())
    for bench in doc["benchmarks"]:
        bench["extra_info"]["samples"][metric] = values
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(
    "values,shown",
    [
        ([1.0, float("inf")], "inf is not a time"),
        ([1.0, float("nan")], "nan is not a time"),
        ([1.0, 0.0], "0.0 is not a time"),
        ([1.0, -2.0], "-2.0 is not a time"),
        ([1.0, True], "True is not a time"),
        ("12345", "expected a list of per-round times, got str"),
        ({"a": 1.0}, "got dict"),
    ],
)
def test_samples_that_are_not_times_are_refused(tmp_path, capsys, values, shown):
    new = with_samples(saved_run(tmp_path / "0002_b.json", seed=1), "wall", values)
    assert run_main(saved_run(tmp_path / "0001_a.json"), new) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {new}: benchmark ") and shown in err and err.count("\n") == 1


def test_empty_samples_are_not_measurements(tmp_path, capsys):
    old = saved_run(tmp_path / "0001_a.json")
    new = with_samples(with_samples(saved_run(tmp_path / "0002_b.json", seed=1), "wall", []), "compute", [])
    assert run_main(old, new) == 2  # every test unmeasured: a run that measured nothing
    assert "measured nothing" in capsys.readouterr().err
    only_wall = with_samples(saved_run(tmp_path / "0003_c.json", seed=2), "compute", [])
    assert [r.metric for r in cmp.compare(SavedRun.load(old), SavedRun.load(only_wall), st.Settings.load())][:1] == [
        "wall"
    ]
    enqueue_only = with_samples(with_samples(saved_run(tmp_path / "0004_d.json", seed=3), "wall", []), "compute", [])
    with_samples(enqueue_only, "enqueue", [1.0] * 25)
    assert SavedRun.load(enqueue_only).tests == {}  # host enqueue alone is not a measured test


def test_runs_with_no_metric_in_common_are_refused(tmp_path):
    old = run_of("old.json", {"t": {"wall": [1.0] * 10}})
    new = run_of("new.json", {"t": {"compute": [1.0] * 10}})
    with pytest.raises(st.Refused, match="^old.json and new.json measured no metric of any test in common"):
        cmp.compare(old, new, st.Settings.load())


def test_a_history_too_far_apart_for_a_threshold_is_refused_naming_the_test(tmp_path, capsys):
    name = "test_approach[torch-fp16]"
    outlier = [run_of(f"{i}.json", {name: {"wall": [m] * 5}}) for i, m in enumerate((1.0, 1.0, 20.0, 1.0))]
    with pytest.raises(st.Refused) as info:
        st.threshold_for(name, "wall", st.Settings.load(), outlier)
    assert str(info.value) == (
        "test_approach[torch-fp16] wall: the history's medians (1.000, 1.000, 20.000, 1.000 ms) "
        "spread too far for a threshold; remove the outlying saved run or give --storage a "
        "history of the same code"
    )
    plain = st.Settings.load(
        settings_file(tmp_path, FULL_THRESHOLDS + "[decision]\nnoise_multiplier = 1\ncv_multiplier = 0\n")
    )
    at = [run_of(f"{i}.json", {name: {"wall": [m] * 5}}) for i, m in enumerate((1.0, 1.0, 11.0, 1.0))]
    with pytest.raises(st.Refused, match="spread too far"):  # exactly 1000%: refused (decide takes < 10)
        st.threshold_for(name, "wall", plain, at)
    below = [run_of(f"{i}.json", {name: {"wall": [m] * 5}}) for i, m in enumerate((1.0, 1.0, 10.9, 1.0))]
    assert st.threshold_for(name, "wall", plain, below) == (pytest.approx(9.9), "history of 4 runs")


def test_saved_runs_are_numbered_files_and_others_are_left_out(tmp_path):
    for name in ("0002_b.json", "0010_c.json", "0001_a.json", "0002abc_x.json", "notes.json", "12_short.json"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in runs.saved_runs(tmp_path)] == ["0001_a.json", "0002_b.json", "0010_c.json"]


def test_a_test_the_old_run_measured_and_the_new_one_lacks_is_not_a_pass(tmp_path, capsys):
    old = saved_run(tmp_path / "0001_a.json")
    new = saved_run(tmp_path / "0002_b.json", {k: v for k, v in MS.items() if k != "overlap"}, seed=1)
    assert run_main(old, new) == 2
    assert "lacks 1 test(s)" in capsys.readouterr().err and "test_approach[torch-overlap]" in old.read_text()
    assert run_main(old, new, "--allow-missing", "*overlap*") == 0  # deselected on purpose


@pytest.mark.parametrize(
    "content,expected",
    [
        ("[]", "not a pytest-benchmark run"),
        ("{not json", "not valid JSON"),
        ('{"benchmarks": [], "machine_info": {"gpu_name": "x"}}', "not of this suite"),
        ('{"benchmarks": [], "machine_info": {"trtbench_schema": 1}}', "saved before per-round samples were recorded"),
    ],
)
def test_unusable_json_is_one_line_and_exit_2(tmp_path, capsys, content, expected):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert run_main(saved_run(tmp_path / "a.json"), bad) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "text,expected",
    [
        (None, "no such file"),
        ("[thresholds.wall\n", "not a readable TOML file"),
        ("[thresholds.wall]\ndefault = 0.1\n[thresholds.compute]\n", "[thresholds.compute] needs a 'default'"),
        ("[thresholds.wall]\ndefault = 12\n[thresholds.compute]\ndefault = 0.1\n", "thresholds.wall.default = 12"),
        (
            "[thresholds.wall]\ndefault = 0.1\n[thresholds.compute]\ndefault = 0.1\n[decision]\nalpha = 2\n",
            "0 < alpha < 1",
        ),
    ],
)
def test_bad_thresholds_files_are_refused(tmp_path, capsys, text, expected):
    path = tmp_path / "t.toml"
    if text is not None:
        path.write_text(text)
    old, new = saved_run(tmp_path / "a.json"), saved_run(tmp_path / "b.json")
    assert run_main(old, new, "--thresholds", path) == 2
    err = capsys.readouterr().err
    assert f"--thresholds {path}" in err and expected in err and err.count("\n") == 1


def test_first_run_passes_with_a_note_and_newest_two_are_compared(tmp_path, capsys):
    storage = tmp_path / "storage" / "H100" / "Linux-CPython-3.12-64bit"
    storage.mkdir(parents=True)
    saved_run(storage / "0001_first.json")
    assert run_main("--storage", tmp_path / "storage") == 0
    assert "no baseline" in capsys.readouterr().out
    saved_run(storage / "0002_second.json", dict(MS, baseline=MS["baseline"] * 1.5), seed=1)
    assert run_main("--storage", tmp_path / "storage") == 1
    assert "test_approach[torch-baseline]" in capsys.readouterr().out


def test_empty_or_absent_storage_is_an_error(tmp_path, capsys):
    assert run_main("--storage", tmp_path) == 2
    assert run_main("--storage", tmp_path / "absent") == 2
    assert "--storage" in capsys.readouterr().err


def test_markdown_table_for_the_job_summary(tmp_path, capsys):
    old, new = saved_run(tmp_path / "0001_a.json"), saved_run(tmp_path / "0002_b.json", seed=1)
    assert run_main(old, new, "--markdown") == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    assert lines[0].startswith("| test | metric | old ms |") and len(lines) == 2 + 2 * len(CASES)


def test_the_repo_thresholds_file_is_valid():
    settings = st.Settings.load()
    assert 0 < settings.thresholds["wall"]["default"] < 1 and 0 < settings.thresholds["compute"]["default"] < 1
    assert settings.alpha == 0.002 and settings.floor == {"wall": 0.03, "compute": 0.025}
    assert settings.noise_multiplier == 3.0 and settings.cv_multiplier == 5.0


def test_commands_never_show_a_traceback(tmp_path):
    for command in (
        ["compare", str(tmp_path / "x.json"), str(tmp_path / "y.json")],
        ["report", str(tmp_path / "x.json")],
        ["compare", "--thresholds"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "trtbench", *command],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={"PYTHONPATH": str(st.ROOT)},
        )
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.strip().count("\n") == 0, done.stderr


def test_an_internal_error_is_one_line_with_its_own_status(capsys):
    def broken():
        raise KeyError("oops")

    assert guarded(broken) == EXIT_INTERNAL
    assert capsys.readouterr().err.startswith("internal error: KeyError")


def test_output_cut_short_by_its_reader_is_its_own_status_without_a_traceback():
    """`trtbench compare ... | head -1`: the reader closes the pipe before the table is out."""
    docs_run = str(st.ROOT / "docs" / "h200" / "resnet18-torch-run.json")
    process = subprocess.Popen(
        [sys.executable, "-m", "trtbench", "compare", docs_run, docs_run],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": str(st.ROOT)},
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before the first line is written
    error = process.stderr.read()
    assert process.wait(timeout=60) == EXIT_PIPE_CLOSED, error
    assert error == ""


def test_ctrl_c_while_the_command_loads_is_the_guards_one_line_and_status(capsys):
    """The handler __main__ puts in before importing anything: deterministic here, by a signal
    the process sends itself while the handler is in place."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import os, signal, time, trtbench.__main__ as m;"
            "signal.signal(signal.SIGINT, m._stop_while_loading);"
            "os.kill(os.getpid(), signal.SIGINT); time.sleep(30)",
        ],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(st.ROOT)},
        timeout=60,
    )
    assert (done.returncode, done.stderr, done.stdout) == (cli.EXIT_INTERRUPTED, "interrupted (Ctrl-C): stopped\n", "")

    def interrupted():
        raise KeyboardInterrupt

    assert guarded(interrupted) == cli.EXIT_INTERRUPTED
    assert capsys.readouterr().err == "interrupted (Ctrl-C): stopped\n"


def test_once_the_command_has_loaded_ctrl_c_is_a_keyboardinterrupt_again(monkeypatch):
    import trtbench.__main__ as entry

    monkeypatch.setattr(cli, "main", lambda: 7)
    before = signal.getsignal(signal.SIGINT)
    try:
        assert entry.main() == 7
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)


# ---------------------------------------------------------------- report


def test_report_renders_markdown_and_every_picture(tmp_path):
    run = saved_run(tmp_path / "0001_a.json", sweep=[(a, b) for a in ("baseline", "uint8_input") for b in (1, 8, 32)])
    assert trtbench("report", run, "--out", tmp_path / "out") == 0
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| baseline | 128 | 30.000" in md and "| cuda_graph | 128 |" in md and "7.00x" in md
    assert "21.000 (1.43x)" in md  # the floor and how far above it
    assert "NVIDIA H100 80GB HBM3" in md and "119 distinct top-1 classes" in md
    assert "## Batch-size sweep" in md and "| torch | uint8_input | 32 |" in md
    for name in ("report.png", "timeline-torch.png", "sweep.png"):
        assert f"![{name}]({name})" in md
        png = (tmp_path / "out" / name).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_report_without_timelines_or_sweep_draws_only_what_it_has(tmp_path):
    run = saved_run(tmp_path / "0001_a.json", timeline=False)
    assert trtbench("report", run, "--out", tmp_path / "o") == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["report.md", "report.png"]


@pytest.mark.parametrize(
    "content,expected",
    [
        (None, "no such file"),
        ("{nope", "not valid JSON"),
        ("[]", "not a pytest-benchmark run"),
        ('{"benchmarks": [], "machine_info": {"trtbench_schema": 2}}', "measured nothing"),
        ('{"benchmarks": [], "machine_info": {}}', "not of this suite"),
    ],
)
def test_report_refuses_unusable_input_in_one_line(tmp_path, capsys, content, expected):
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    assert trtbench("report", path, "--out", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1


def test_report_out_must_be_a_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert trtbench("report", saved_run(tmp_path / "a.json"), "--out", blocker) == 2
    assert "--out" in capsys.readouterr().err


# ---------------------------------------------------------------- compare: every refusal, default and boundary
# (each pins a behaviour a mutation test found unchecked: see mutation/run.py)

H100 = {"gpu_name": "NVIDIA H100 80GB HBM3", "tensorrt": "absent", "model": "resnet18"}
FULL_THRESHOLDS = "[thresholds.wall]\ndefault = 0.10\n[thresholds.compute]\ndefault = 0.05\n"


def run_of(name, tests, machine=H100, batch=128):
    """A loaded run, made in memory: ``tests`` maps a test name to its metric -> samples."""
    return SavedRun(Path(name), dict(machine), {}, "", {t: record(t, batch, dict(s)) for t, s in tests.items()})


def settings_file(tmp_path, text):
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


def refusal(tmp_path, text):
    path = settings_file(tmp_path, text)
    with pytest.raises(st.Refused) as info:
        st.Settings.load(path)
    return str(info.value).removeprefix(f"--thresholds {path}: ")


def test_settings_defaults_and_every_decision_key_is_read(tmp_path):
    s = st.Settings.load(settings_file(tmp_path, FULL_THRESHOLDS))
    assert (
        s.alpha,
        s.noise_multiplier,
        s.cv_multiplier,
        s.history_min_runs,
        s.history_window,
        s.max_rounds_factor,
    ) == (0.002, 3.0, 5.0, 3, 10, 4)
    assert s.floor == {"wall": 0.01, "compute": 0.01} and s.fixed == {"wall": {}, "compute": {}}
    assert s.thresholds == {"wall": {"default": 0.10}, "compute": {"default": 0.05}}
    edge = st.Settings.load(
        settings_file(
            tmp_path,
            FULL_THRESHOLDS
            + (
                "[decision]\nalpha = 0.01\nnoise_multiplier = 0.5\ncv_multiplier = 0\nhistory_min_runs = 2\n"
                "history_window = 2\nmax_rounds_factor = 1\n[floor]\nwall = 0.04\n"
            ),
        )
    )  # each bound's edge is allowed
    assert (
        edge.alpha,
        edge.noise_multiplier,
        edge.cv_multiplier,
        edge.history_min_runs,
        edge.history_window,
        edge.max_rounds_factor,
    ) == (0.01, 0.5, 0.0, 2, 2, 1)
    assert edge.floor == {"wall": 0.04, "compute": 0.01}


@pytest.mark.parametrize(
    "decision",
    [
        "alpha = 0",
        "alpha = 1",
        "alpha = 1.5",
        "noise_multiplier = 0",
        "cv_multiplier = -0.1",
        "history_min_runs = 1",
        "history_window = 2",
        "max_rounds_factor = 0",
    ],
)
def test_decision_values_out_of_bounds_are_refused(tmp_path, decision):
    assert refusal(tmp_path, FULL_THRESHOLDS + "[decision]\n" + decision + "\n") == (
        "[decision] needs 0 < alpha < 1, noise_multiplier > 0, cv_multiplier >= 0, history_min_runs >= 2, "
        "history_window >= history_min_runs, max_rounds_factor >= 1"
    )


@pytest.mark.parametrize(
    "text,expected",
    [
        (FULL_THRESHOLDS + '[decision]\nalpha = "x"\n', "decision.alpha = 'x' is not a number"),
        (FULL_THRESHOLDS + '[decision]\nalpha = "0.01"\n', "decision.alpha = '0.01' is not a number"),
        (FULL_THRESHOLDS + "[decision]\nnoise_multiplier = true\n", "decision.noise_multiplier = True is not a number"),
        (FULL_THRESHOLDS + "[decision]\nhistory_min_runs = 2.9\n", "decision.history_min_runs = 2.9 is not an integer"),
        ("decision = 5\n" + FULL_THRESHOLDS, "decision = 5 must be a table ([decision])"),  # top-level keys come first
        ("thresholds = 1\n", "thresholds = 1 must be a table ([thresholds])"),
        ("fixed = 5\n" + FULL_THRESHOLDS, "fixed = 5 must be a table ([fixed])"),  # top-level keys come first
        ("floor = 5\n" + FULL_THRESHOLDS, "floor = 5 must be a table ([floor])"),  # top-level keys come first
        ("[thresholds.wall]\ndefault = true\n", "thresholds.wall.default = True is not a fraction such as 0.10"),
        ("[thresholds.wall]\ndefault = 0\n", "thresholds.wall.default = 0 is not a fraction such as 0.10"),
        ("[thresholds.wall]\ndefault = 10\n", "thresholds.wall.default = 10 is not a fraction such as 0.10"),
        ("[thresholds.wall]\ndefault = 10.5\n", "thresholds.wall.default = 10.5 is not a fraction such as 0.10"),
        ('[thresholds.wall]\ndefault = "0.1"\n', "thresholds.wall.default = '0.1' is not a fraction such as 0.10"),
        ("[thresholds]\nwall = 0.1\n", "[thresholds.wall] must be a table of fractions"),
        ("[thresholds.wall]\ndefault = 0.1\n", "[thresholds.compute] needs a 'default'"),
        ("", "[thresholds.wall] needs a 'default'"),
        (FULL_THRESHOLDS + "[floor]\nwall = 0\n", "floor.wall = 0 is not a fraction such as 0.10"),
        (FULL_THRESHOLDS + "[fixed]\nwall = 0.2\n", "[fixed.wall] must be a table of fractions"),
        (FULL_THRESHOLDS + "[fixed.compute]\nfp16 = 20\n", "fixed.compute.fp16 = 20 is not a fraction such as 0.10"),
    ],
)
def test_bad_settings_are_refused_naming_the_entry(tmp_path, text, expected):
    assert refusal(tmp_path, text) == expected


def test_per_case_then_per_approach_then_default_thresholds(tmp_path):
    s = st.Settings.load(
        settings_file(
            tmp_path,
            (
                '[thresholds.wall]\ndefault = 0.10\ncuda_graph = 0.2\n"async_postprocess-b1" = 0.8\n'
                "[thresholds.compute]\ndefault = 0.05\n[fixed.compute]\nfp16 = 0.3\n"
            ),
        )
    )
    assert st.threshold_for("test_approach[torch-cuda_graph-b1]", "wall", s, []) == (0.2, "regression.toml")
    assert st.threshold_for("test_approach[torch-cuda_graph]", "wall", s, []) == (0.2, "regression.toml")
    assert st.threshold_for("test_approach[torch-async_postprocess-b1]", "wall", s, []) == (0.8, "regression.toml")
    assert st.threshold_for("test_approach[torch-async_postprocess]", "wall", s, []) == (0.10, "regression.toml")
    assert st.threshold_for("test_approach[torch-fp16-b1]", "compute", s, []) == (0.3, "fixed")
    assert catalogue.case_of("a_plain_name") == "a_plain_name"


def history_runs(n, name="test_approach[torch-fp16]"):
    """n runs whose medians are 10, 10.2, 10.4, ... with a round-to-round spread of 1%."""
    return [
        run_of(f"{i}.json", {name: {"wall": [v * (10 + 0.2 * i) for v in (0.99, 1.0, 1.01, 1.0, 0.98)]}})
        for i in range(n)
    ]


def test_history_threshold_is_the_larger_of_the_spread_and_the_round_noise_terms(tmp_path):
    name = "test_approach[torch-fp16]"
    runs = history_runs(3) + [run_of("other.json", {"test_approach[torch-overlap]": {"wall": [1.0] * 5}})]
    spread = (10.4 - 10.0) / 10.2
    cv = 1.4826 * 0.01  # MAD / median of every run's rounds
    spread_wins = st.Settings.load(
        settings_file(tmp_path, FULL_THRESHOLDS + "[decision]\nnoise_multiplier = 2.5\ncv_multiplier = 0\n")
    )
    assert st.threshold_for(name, "wall", spread_wins, runs) == (pytest.approx(2.5 * spread), "history of 3 runs")
    noise_wins = st.Settings.load(
        settings_file(tmp_path, FULL_THRESHOLDS + "[decision]\nnoise_multiplier = 0.1\ncv_multiplier = 5\n")
    )
    assert st.threshold_for(name, "wall", noise_wins, runs) == (pytest.approx(5 * cv), "history of 3 runs")
    four = st.Settings.load(settings_file(tmp_path, FULL_THRESHOLDS + "[decision]\nhistory_min_runs = 4\n"))
    assert st.threshold_for(name, "wall", four, runs) == (0.10, "regression.toml")  # 3 runs are too few
    window = st.Settings.load(
        settings_file(
            tmp_path,
            FULL_THRESHOLDS
            + ("[decision]\nhistory_min_runs = 2\nhistory_window = 2\nnoise_multiplier = 2\ncv_multiplier = 0\n"),
        )
    )
    *earlier, new = history_runs(4)
    assert [r.path.name for r in cmp.threshold_history(new, [*earlier, new], window)] == ["1.json", "2.json"]
    assert st.threshold_for(name, "wall", window, cmp.threshold_history(new, [*earlier, new], window)) == (
        pytest.approx(2 * 0.2 / 10.3),
        "history of 2 runs",
    )  # the newest two before new


def test_a_run_that_does_not_name_its_gpu_is_unknown(tmp_path):
    old = run_of("a.json", {"t": {"wall": [1.0] * 5}}, machine={"tensorrt": "absent", "model": "resnet18"})
    new = run_of("b.json", {"t": {"wall": [1.0] * 5}}, machine=dict(H100, gpu_name="unknown"))
    cmp.check_comparable(old, new)  # both unknown: the same
    with pytest.raises(st.Refused) as info:
        cmp.check_comparable(old, run_of("b.json", {"t": {"wall": [1.0] * 5}}))
    assert str(info.value) == (
        "refusing to compare: gpu_name differs (a.json: 'unknown', b.json: "
        "'NVIDIA H100 80GB HBM3'); compare runs of the same GPU model, TensorRT version and model"
    )
    with pytest.raises(st.Refused, match=r"\(a.json: 'NVIDIA H100 80GB HBM3', b.json: 'unknown'\)"):
        cmp.check_comparable(
            run_of("a.json", {}), run_of("b.json", {}, machine={"tensorrt": "absent", "model": "resnet18"})
        )


SAMPLES = {"wall": [1.0, 1.01, 0.99, 1.0, 1.02], "compute": [0.8, 0.81, 0.79, 0.8, 0.8]}


@pytest.mark.parametrize(
    "lacking,shown",
    [
        (1, "t0"),
        (5, "t0, t1, t2, t3, t4"),
        (6, "t0, t1, t2, t3, t4 and 1 more"),
        (7, "t0, t1, t2, t3, t4 and 2 more"),
    ],
)
def test_the_tests_a_new_run_lacks_are_named(lacking, shown):
    old = run_of("a.json", {f"t{i}": SAMPLES for i in range(8)})
    new = run_of("b.json", {f"t{i}": SAMPLES for i in range(lacking, 8)})
    with pytest.raises(st.Refused) as info:
        cmp.compare(old, new, st.Settings.load())
    assert str(info.value) == (
        f"b.json lacks {lacking} test(s) that a.json measured: {shown}; if they were "
        "deselected on purpose, name them with --allow-missing PATTERN"
    )


def test_allow_missing_excuses_only_what_it_names():
    names = ["test_approach[torch-overlap]", "test_approach[torch-fp16]", "test_approach[torch-baseline]"]
    old = run_of("a.json", {n: SAMPLES for n in names})
    new = run_of("b.json", {names[2]: SAMPLES})
    with pytest.raises(st.Refused, match=r"lacks 1 test\(s\) that a.json measured: test_approach\[torch-fp16\];"):
        cmp.compare(old, new, st.Settings.load(), allow_missing=[names[0]])  # an exact name (it holds [ ])
    rows = cmp.compare(old, new, st.Settings.load(), allow_missing=[names[0], "*fp16*"])
    assert {r.name for r in rows} == {names[2]}


def test_allow_missing_may_be_given_several_times(tmp_path):
    old = saved_run(tmp_path / "0001_a.json")
    new = saved_run(tmp_path / "0002_b.json", {k: v for k, v in MS.items() if k not in ("overlap", "fp16")}, seed=1)
    assert run_main(old, new, "--allow-missing", "test_approach[torch-overlap]") == 2
    assert run_main(old, new, "--allow-missing", "test_approach[torch-overlap]", "--allow-missing", "*-fp16]") == 0
    assert (
        run_main(
            old, new, "--allow-missing", "test_approach[torch-overlap]", "--allow-missing", "test_approach[torch-fp16]"
        )
        == 0
    )  # exact names, each kept


def test_only_history_of_the_same_gpu_and_never_the_new_run_sets_thresholds():
    name = "test_approach[torch-fp16]"
    old = run_of("old.json", {name: SAMPLES})
    new = run_of("new.json", {name: SAMPLES})
    other_gpu = [dataclasses.replace(r, machine=dict(H100, gpu_name="NVIDIA A100")) for r in history_runs(4, name)]
    rows = cmp.compare(old, new, st.Settings.load(), history=other_gpu + [old, new])
    assert [(r.metric, r.threshold_source) for r in rows] == [
        ("wall", "regression.toml"),
        ("compute", "regression.toml"),
    ]
    same = [dataclasses.replace(r, machine=dict(H100)) for r in history_runs(4, name)]
    rows = cmp.compare(old, new, st.Settings.load(), history=same + [new])
    assert [(r.metric, r.threshold_source) for r in rows] == [
        ("wall", "history of 4 runs"),
        ("compute", "regression.toml"),
    ]  # no compute history


def test_thresholds_come_only_from_runs_of_the_same_weights_but_other_weights_still_compare():
    name = "test_approach[torch-fp16]"
    seeded = dict(H100, weights="seeded:0:calibration-v2")
    old, new = (dataclasses.replace(run_of(f, {name: SAMPLES}), machine=seeded) for f in ("old.json", "new.json"))
    tuned = [
        dataclasses.replace(r, machine=dict(seeded, weights="sha256:0123456789abcdef")) for r in history_runs(4, name)
    ]
    rows = cmp.compare(old, new, st.Settings.load(), history=tuned)
    assert [r.threshold_source for r in rows] == ["regression.toml", "regression.toml"]
    same = [dataclasses.replace(r, machine=seeded) for r in history_runs(4, name)]
    assert cmp.compare(old, new, st.Settings.load(), history=same)[0].threshold_source == "history of 4 runs"
    other = dataclasses.replace(new, machine=dict(seeded, weights="sha256:0123456789abcdef"))
    assert [r.verdict for r in cmp.compare(old, other, st.Settings.load())] == ["ok", "ok"]  # not refused


def steady(median, n=25, seed=0):
    return list(median * (1 + 0.002 * np.random.default_rng(seed).standard_normal(n)))


def test_an_enqueue_bound_tests_gpu_time_is_judged_with_the_wall_threshold(tmp_path):
    """trtexec's rule: enqueue > 0.8 x GPU compute means the GPU waits for the host."""
    name = "test_approach[torch-baseline]"  # fallback thresholds: wall 25%, compute 5%
    settings = st.Settings.load()

    def run(file, compute, enqueue, seed):
        return run_of(
            file,
            {
                name: {
                    "wall": steady(10.0, seed=seed),
                    "compute": steady(compute, seed=seed + 1),
                    "enqueue": steady(enqueue, seed=seed + 2),
                }
            },
        )

    def judged(old_enqueue, new_enqueue):
        rows = cmp.compare(run("old.json", 2.0, old_enqueue, 0), run("new.json", 2.2, new_enqueue, 3), settings)
        return {r.metric: (r.verdict, r.decision.threshold, r.threshold_source) for r in rows}

    assert judged(1.0, 1.0)["compute"] == ("REGRESSION", 0.05, "regression.toml")  # GPU-bound: +10% > 5%
    bound = judged(1.0, 2.0)  # the new run's host enqueue (2.0) > 0.8 x its GPU time (2.2)
    assert bound["compute"] == ("ok", 0.25, "wall's, enqueue-bound; regression.toml")
    assert judged(1.9, 1.0)["compute"][2].startswith("wall's")  # the old run's (1.9 > 1.6) counts too
    assert cmp.enqueue_bound(record("t", 1, {"compute": [2.0] * 3, "enqueue": [1.6] * 3})) is False  # 0.8 x
    assert cmp.enqueue_bound(record("t", 1, {"compute": [2.0] * 3, "enqueue": [1.61] * 3})) is True
    assert cmp.enqueue_bound(record("t", 1, {"compute": [2.0, 2.0, 30], "enqueue": [0.1, 1.7, 1.8]})) is True  # medians
    assert cmp.enqueue_bound(record("t", 1, {"compute": [2.0]})) is False  # no enqueue samples
    assert cmp.enqueue_bound(record("t", 1, {"enqueue": [2.0]})) is False
    # a wall threshold below the compute one never lowers it
    low_wall = st.Settings.load(settings_file(tmp_path, FULL_THRESHOLDS.replace("default = 0.10", "default = 0.02")))
    rows = cmp.compare(run("old.json", 2.0, 1.0, 0), run("new.json", 2.2, 2.0, 3), low_wall)
    assert [(r.metric, r.decision.threshold, r.threshold_source) for r in rows] == [
        ("wall", 0.02, "regression.toml"),
        ("compute", 0.05, "regression.toml"),
    ]
    equal = st.Settings.load(settings_file(tmp_path, FULL_THRESHOLDS.replace("default = 0.10", "default = 0.05")))
    rows = cmp.compare(run("old.json", 2.0, 1.0, 0), run("new.json", 2.2, 2.0, 3), equal)
    assert rows[1].threshold_source == "regression.toml"  # an equal wall threshold changes nothing


def test_saved_runs_keep_their_enqueue_samples(tmp_path):
    path = saved_run(tmp_path / "0001_a.json", {"fp16": 6.0})
    doc = json.loads(path.read_text())
    doc["benchmarks"][0]["extra_info"]["samples"]["enqueue"] = [1.5] * 25
    path.write_text(json.dumps(doc))
    assert SavedRun.load(path).tests["test_approach[torch-fp16]"].samples["enqueue"] == (1.5,) * 25


def test_a_metric_one_run_lacks_is_left_out_and_the_others_are_compared():
    old = run_of("a.json", {"t": SAMPLES})
    new = run_of("b.json", {"t": {"compute": SAMPLES["compute"]}})
    assert [(r.name, r.metric) for r in cmp.compare(old, new, st.Settings.load())] == [("t", "compute")]
    assert [(r.name, r.metric) for r in cmp.compare(new, old, st.Settings.load())] == [("t", "compute")]


def test_the_settings_alpha_decides_significance(tmp_path):
    old = run_of("a.json", {"t": {"wall": samples(10.0, 0.05, 8, 5)}})
    new = run_of("b.json", {"t": {"wall": samples(11.0, 0.05, 8, 55)}})  # +12%, p = 0.018
    assert [r.verdict for r in cmp.compare(old, new, st.Settings.load(settings_file(tmp_path, FULL_THRESHOLDS)))] == [
        "unclear"
    ]
    lax = st.Settings.load(settings_file(tmp_path, FULL_THRESHOLDS + "[decision]\nalpha = 0.5\n"))
    assert [r.verdict for r in cmp.compare(old, new, lax)] == ["REGRESSION"]


def table_rows():
    from trtbench.stats import Decision

    return [
        cmp.Row("test_approach[torch-fp16]", "wall", Decision("ok", 6.0, 6.06, 0.1, 0.0123, "r"), "regression.toml"),
        cmp.Row(
            "test_approach[torch-cuda_graph-b1]",
            "compute",
            Decision("unclear", 0.5, 0.6, 0.05, None, "r"),
            "history of 3 runs",
        ),
    ]


def test_table_plain_and_markdown_exactly():
    assert cmp.format_table(table_rows()) == "\n".join(
        [
            "test                                metric   old ms  new ms  change  threshold                 "
            "p (Mann-Whitney)  verdict",
            "test_approach[torch-fp16]           wall     6.000   6.060   +1.0%   10.0% (regression.toml)   "
            "0.012             ok",
            "test_approach[torch-cuda_graph-b1]  compute  0.500   0.600   +20.0%  5.0% (history of 3 runs)  "
            "-                 unclear",
        ]
    )
    assert cmp.format_table(table_rows(), markdown=True) == "\n".join(
        [
            "| test | metric | old ms | new ms | change | threshold | p (Mann-Whitney) | verdict |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
            "| test_approach[torch-fp16] | wall | 6.000 | 6.060 | +1.0% | 10.0% (regression.toml) | 0.012 | ok |",
            "| test_approach[torch-cuda_graph-b1] | compute | 0.500 | 0.600 | +20.0% | 5.0% (history of 3 runs) | - "
            "| unclear |",
        ]
    )


def test_saved_runs_are_ordered_by_number_then_time_across_folders(tmp_path):
    import os

    paths = {}
    for folder, name, mtime in (
        ("A", "0010_late.json", 100),
        ("B", "0009_early.json", 300),
        ("B", "0003_a_b_c.json", 200),
        ("A", "0003_x.json", 250),
    ):
        path = tmp_path / folder / name
        path.parent.mkdir(exist_ok=True)
        path.write_text("{}")
        os.utime(path, (mtime, mtime))
        paths[name] = path
    (tmp_path / "A" / "notes.json").write_text("{}")
    assert runs.saved_runs(tmp_path) == [
        paths[n] for n in ("0003_a_b_c.json", "0003_x.json", "0009_early.json", "0010_late.json")
    ]


def test_history_skips_an_unusable_run_and_keeps_the_rest(tmp_path):
    bad = tmp_path / "0001_bad.json"
    bad.write_text("{nope")
    good = saved_run(tmp_path / "0002_good.json")
    assert [r.path for r in runs.load_all([bad, good])[0]] == [good]


def test_unreadable_runs_are_refused_saying_why(tmp_path):
    with pytest.raises(Malformed, match=r": a folder, not a file$"):
        SavedRun.load(tmp_path)
    binary = tmp_path / "run.json"
    binary.write_bytes(b"\xff\xfe\x00not utf-8")
    with pytest.raises(Malformed, match=r"run.json: not readable \(UnicodeDecodeError: "):
        SavedRun.load(binary)
    for doc in ({"benchmarks": []}, {"machine_info": {}}, {"benchmarks": {}, "machine_info": {}}):
        binary.write_text(json.dumps(doc))
        with pytest.raises(Malformed) as info:
            SavedRun.load(binary)
        assert str(info.value) == (
            f"{binary}: not a pytest-benchmark run (expected an object with 'benchmarks' and 'machine_info')"
        )
    binary.write_text(json.dumps({"benchmarks": [], "machine_info": {}}))  # another project's run
    with pytest.raises(Malformed) as info:
        SavedRun.load(binary)
    assert str(info.value) == (
        f"{binary}: a pytest-benchmark run, but not of this suite (its machine_info has no trtbench_schema)"
    )
    binary.write_text(json.dumps({"benchmarks": [], "machine_info": {"trtbench_schema": 1}}))
    with pytest.raises(Malformed) as info:
        SavedRun.load(binary)
    assert str(info.value) == (
        f"{binary}: saved before per-round samples were recorded (schema 1, need 2); run the "
        "suite again to make a baseline"
    )


def test_foreign_benchmarks_are_skipped_and_ours_loaded(tmp_path):
    path = saved_run(tmp_path / "0001_a.json", {"fp16": 6.0})
    doc = json.loads(path.read_text())
    ours = doc["benchmarks"][0]
    doc["benchmarks"] = [
        "not an object",
        {"name": "test_other"},
        {"name": "test_x", "extra_info": {"ms": 1.0}},
        {"name": "test_y", "extra_info": {"samples": None}},
        ours,
    ]
    path.write_text(json.dumps(doc))
    assert list(SavedRun.load(path).tests) == ["test_approach[torch-fp16]"]
    ours["extra_info"]["samples"]["wall"][3] = "x"
    doc["benchmarks"] = [ours]
    path.write_text(json.dumps(doc))
    with pytest.raises(Malformed) as info:
        SavedRun.load(path)
    assert str(info.value) == (
        f"{path}: benchmark 'test_approach[torch-fp16]': samples.wall: 'x' is not a time (a finite number above zero)"
    )


def test_help_names_the_command_its_options_and_exit_statuses(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as info:
        run_main("--help")
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert text.startswith(
        "usage: trtbench compare [-h] [--storage STORAGE] [--thresholds THRESHOLDS] "
        "[--allow-missing PATTERN] [--markdown] [runs ...] Compare saved runs per test and metric; "
        "exit 1 on a regression."
    )
    for line in (
        "runs OLD.json NEW.json, or NEW.json (default: the newest run in --storage)",
        "--storage STORAGE saved runs folder, searched recursively for the newest run (default .benchmarks)",
        "--thresholds THRESHOLDS a whole settings file like regression.toml (default: regression.toml); what it "
        "leaves out takes the built-in defaults",
        "--allow-missing PATTERN a test name, or an fnmatch pattern, the new run may lack: deselected on purpose",
        "--markdown print the table as markdown (a job summary)",
    ):
        assert line in text
    assert text.endswith(
        "exit status: 0 fine, 1 regression (or what the check guards against), 2 refused input, "
        "3 can't tell, 70 internal error, 130 Ctrl-C, 141 output cut short (its reader closed the pipe)"
    )


def test_more_than_two_runs_is_refused(tmp_path, capsys):
    assert run_main(tmp_path / "a", tmp_path / "b", tmp_path / "c") == 2
    assert capsys.readouterr().err == "error: give at most two runs (OLD.json NEW.json), got 3\n"


def test_an_unknown_option_is_a_usage_error_in_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        run_main("--bogus")
    assert info.value.code == 2
    assert capsys.readouterr().err == (
        "trtbench compare: unrecognized arguments: --bogus (see trtbench compare --help)\n"
    )


def test_missing_files_and_empty_storage_messages(tmp_path, capsys, monkeypatch):
    assert run_main(tmp_path / "x.json", tmp_path / "y.json") == 2
    assert capsys.readouterr().err == f"error: no such file: {tmp_path / 'x.json'}, {tmp_path / 'y.json'}\n"
    monkeypatch.chdir(tmp_path)
    assert run_main() == 2
    assert capsys.readouterr().err == "error: no saved run (NNNN_*.json) found in .benchmarks\n"
    (tmp_path / ".benchmarks" / "H100").mkdir(parents=True)
    saved_run(tmp_path / ".benchmarks" / "H100" / "0001_a.json")
    assert run_main() == 0
    assert capsys.readouterr().out == (
        f"no baseline to compare {Path('.benchmarks/H100/0001_a.json')} with in "
        f"{Path('.benchmarks/H100')}: first run, passing (it becomes the baseline)\n"
    )


def test_a_lone_run_that_measured_nothing_is_refused(tmp_path, capsys):
    empty = tmp_path / "0001_a.json"
    empty.write_text(json.dumps({"machine_info": dict(H100, trtbench_schema=2), "benchmarks": []}))
    assert run_main(empty) == 2
    assert capsys.readouterr().err == (
        f"error: {empty}: measured nothing (no benchmark with per-round samples; every "
        "test skipped or --benchmark-disable?)\n"
    )


def test_a_named_new_run_is_compared_with_the_newest_run_of_its_folder_alone(tmp_path, capsys):
    storage = tmp_path / "storage"
    storage.mkdir()
    saved = [saved_run(storage / f"000{i}_r.json", seed=i) for i in (1, 2, 3)]
    (storage / "copies").mkdir()  # runs below the folder are another machine's: never history
    saved_run(storage / "copies" / "0009_elsewhere.json", seed=9)
    assert run_main(saved[2]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        f"old: {saved[1]}\nnew: {saved[2]}\nhistory for thresholds: 2 run(s) of the same GPU, "
        f"TensorRT, model and weights in {storage}: 0001, 0002\n\n"
    )
    assert out.endswith("\n\nno regression\n") and "0009" not in out
    assert run_main(saved[2], "--storage", storage) == 2
    assert "--storage picks the newest run when no run is given" in capsys.readouterr().err


def test_every_flagged_test_is_listed_with_its_count(tmp_path, capsys):
    old = saved_run(tmp_path / "0001_a.json")
    slower = dict(MS, overlap=MS["overlap"] * 1.5, fp16=MS["fp16"] * 1.5)
    new = saved_run(
        tmp_path / "0002_b.json", slower, seed=1, compute={"overlap": MS["overlap"] * 0.8, "fp16": MS["fp16"] * 0.8}
    )
    assert run_main(old, new) == 1
    tail = capsys.readouterr().out.rsplit("\n\n", 1)[1]
    assert tail.startswith("2 regression(s): test_approach[torch-fp16] wall time per batch ")
    assert "; test_approach[torch-overlap] wall time per batch " in tail
    (tmp_path / "noisy").mkdir()
    noisy_old = saved_run(tmp_path / "noisy" / "0001_a.json", spread=0.4, rounds=6)
    noisy_new = saved_run(
        tmp_path / "noisy" / "0002_b.json", dict(MS, fp16=MS["fp16"] * 1.2), seed=1, spread=0.4, rounds=6
    )
    assert run_main(noisy_old, noisy_new) == 3
    tail = capsys.readouterr().out.rsplit("\n\n", 1)[1]
    bad = cmp.unclear(
        cmp.compare(SavedRun.load(noisy_old), SavedRun.load(noisy_new), st.Settings.load(), [SavedRun.load(noisy_old)])
    )
    assert len(bad) >= 2 and tail == (
        f"{len(bad)} can't tell: rerun with more --rounds: " + "; ".join(cmp.describe(r) for r in bad) + "\n"
    )


@pytest.mark.parametrize(
    "change,shown",
    [
        (lambda e: e.pop("batch_size"), "batch_size None is not a batch size"),
        (lambda e: e.update(batch_size="128"), "batch_size '128' is not a batch size"),
        (lambda e: e.update(ms_per_batch="4.2"), "ms_per_batch '4.2' is not a time or rate above zero"),
        (lambda e: e.update(ms_per_batch=0), "ms_per_batch 0 is not a time or rate above zero"),
        (lambda e: e["timeline"]["host"][0].pop("thread"), "a malformed timeline"),
        (lambda e: e["timeline"]["gpu"][0].update(end_ms="x"), "a malformed timeline"),
        (lambda e: e.update(timeline=[]), "a malformed timeline"),
    ],
)
def test_report_refuses_a_row_it_cannot_draw_naming_the_benchmark(tmp_path, capsys, change, shown):
    path = saved_run(tmp_path / "a.json", {"fp16": 6.0})
    doc = json.loads(path.read_text())
    change(doc["benchmarks"][0]["extra_info"])
    path.write_text(json.dumps(doc))
    assert trtbench("report", path, "--out", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert (
        err == f"error: {path}: benchmark 'test_approach[torch-fp16]': {shown}" + err[err.index(shown) + len(shown) :]
    )
    assert err.count("\n") == 1 and not (tmp_path / "o").exists()


def test_an_overlapping_approachs_gpu_figure_is_its_busy_time_over_the_round():
    busy, spans = [4.0, 4.1, 3.9], [9.0, 9.2, 8.8]
    overlapping = record("test_approach[torch-multi_context]", 8, {"wall": [5.0], "compute": spans, "gpu_busy": busy})
    assert overlapping.gated("compute") == tuple(busy)
    assert overlapping.gated("wall") == (5.0,)
    before_busy = record("test_approach[torch-multi_context]", 8, {"compute": spans})
    assert before_busy.gated("compute") is None  # saved before it was recorded: not judged
    for name in ("test_approach[torch-fp16]", "test_not_of_the_catalogue"):
        assert record(name, 8, {"compute": spans, "gpu_busy": busy}).gated("compute") == tuple(spans)


def test_table_is_plain_text_unless_asked_for_markdown():
    assert cmp.table(["a", "bb"], [["ccc", "d"]]) == "a    bb\nccc  d"
    assert cmp.table(["a", "bb"], [["ccc", "d"]], markdown=True) == "| a | bb |\n| --- | --- |\n| ccc | d |"


def test_an_overlapping_approachs_threshold_comes_from_the_samples_it_is_judged_on():
    """multi_context's GPU figure is judged on its busy time: the history's threshold too, not on
    the per-batch spans, which hold the other context's work and scatter by tens of percent."""
    name = "test_approach[torch-multi_context]"
    history = [
        run_of(f"{i}.json", {name: {"compute": [9.0 * (1 + 0.3 * (i % 2))] * 5, "gpu_busy": [4.0, 4.01, 3.99]}})
        for i in range(4)
    ]
    value, source = st.threshold_for(name, "compute", st.Settings.load(), history)
    assert source == "history of 4 runs" and value == pytest.approx(st.Settings.load().floor["compute"])


def test_compare_new_takes_its_baseline_and_history_only_from_older_runs(tmp_path, capsys):
    folder = tmp_path / "H100" / "m"
    folder.mkdir(parents=True)
    paths = [saved_run(folder / f"000{i}_aa.json", seed=i) for i in range(1, 6)]
    assert run_main(paths[2]) == 0
    out = capsys.readouterr().out
    assert f"old: {paths[1]}" in out
    assert (
        f"history for thresholds: 2 run(s) of the same GPU, TensorRT, model and weights in {folder}: 0001, 0002" in out
    )


def test_compare_new_is_refused_when_the_earlier_runs_of_its_folder_cannot_be_used(tmp_path, capsys):
    folder = tmp_path / "H100" / "m"
    folder.mkdir(parents=True)
    (folder / "0001_cut.json").write_text('{"machine_info": ')
    saved_run(folder / "0002_a100.json", gpu="NVIDIA A100")
    new = saved_run(folder / "0003_new.json", seed=3)
    assert run_main(new) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: no baseline for {new}: the 2 earlier run(s) in {folder} cannot be used (")
    assert "0001_cut.json: not valid JSON" in err and "0002_a100.json: another GPU" in err and err.count("\n") == 1


def _edited_run(tmp_path, edit):
    path = saved_run(tmp_path / "0001_r.json")
    doc = json.loads(path.read_text())
    edit(doc, doc["benchmarks"][0]["extra_info"])
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(
    "edit,shown",
    [
        (
            lambda doc, info: doc.update(trtbench={"discrimination": {"batch": 4}}),
            "trtbench.discrimination {'batch': 4} needs the numbers batch, distinct_classes, image_dependent_share",
        ),
        (lambda doc, info: info.update(floor={"x": 1}), "floor {'x': 1} has no floor_ms above zero"),
        (lambda doc, info: info.update(ms_per_batch_iqr="x"), "ms_per_batch_iqr 'x' is not a number"),
        (lambda doc, info: info.update(top1_agreement=True), "top1_agreement True is not a number"),
    ],
)
def test_figures_a_report_formats_are_checked_when_a_run_is_read(tmp_path, capsys, edit, shown):
    path = _edited_run(tmp_path, edit)
    assert trtbench("report", path, "--out", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}") and shown in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_a_report_draws_a_timeline_of_one_side(tmp_path):
    path = _edited_run(tmp_path, lambda doc, info: info["timeline"].pop("gpu"))
    assert trtbench("report", path, "--out", tmp_path / "o") == 0
    assert (tmp_path / "o" / "report.md").is_file()


def test_json_nested_too_deeply_is_refused_in_one_line(tmp_path, capsys):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200000)
    assert trtbench("compare", saved_run(tmp_path / "0001_a.json"), deep) == 2
    assert capsys.readouterr().err == f"error: {deep}: not usable JSON (nested too deeply)\n"


@pytest.mark.parametrize(
    "text,where,unknown",
    [
        (FULL_THRESHOLDS + "[decision]\nalpah = 0.01\n", "[decision]", "alpah"),
        (FULL_THRESHOLDS + "[thresold]\nwall = 0.1\n", "the file", "thresold"),
        (FULL_THRESHOLDS + "[ab]\nok_alhpa = 0.1\n", "[ab]", "ok_alhpa"),
        (FULL_THRESHOLDS + "[floor]\ngpu = 0.1\n", "[floor]", "gpu"),
    ],
)
def test_a_misspelt_settings_key_is_refused_not_ignored(tmp_path, text, where, unknown):
    known = {
        "[decision]": "alpha, noise_multiplier, cv_multiplier, history_min_runs, history_window, max_rounds_factor",
        "the file": "decision, floor, thresholds, fixed, ab",
        "[ab]": "alpha, ok_alpha, wall, compute",
        "[floor]": "wall, compute",
    }[where]
    assert refusal(tmp_path, text) == f"unknown key(s) {unknown} in {where}; known: {known}"


def test_a_folders_own_runs_leave_out_those_of_folders_below_it(tmp_path):
    top = saved_run(tmp_path / "0001_top.json")
    (tmp_path / "below").mkdir()
    saved_run(tmp_path / "below" / "0002_below.json")
    assert runs.saved_runs(tmp_path, recursive=False) == [top]
    assert [p.name for p in runs.saved_runs(tmp_path)] == ["0001_top.json", "0002_below.json"]
