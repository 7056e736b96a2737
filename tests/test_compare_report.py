"""Comparing saved runs and reporting them, on synthetic pytest-benchmark JSON: verdicts,
thresholds (fixed, history, fallback), refusals with one line and exit 2, and the report."""

import json
import subprocess
import sys

import numpy as np
import pytest

from trtbench import compare as cmp
from trtbench import report
from trtbench.cli import EXIT_INTERNAL, guarded

CASES = ["baseline", "reuse_buffers", "pinned_memory", "fp16", "overlap", "async_postprocess", "cuda_graph",
         "gpu_postprocess", "uint8_input"]
MS = {c: 30.0 / (i + 1) for i, c in enumerate(CASES)}


def samples(median, spread, n, seed):
    return list(median * (1 + spread * np.random.default_rng(seed).standard_normal(n)))


def saved_run(path, ms=None, *, gpu="NVIDIA H100 80GB HBM3", trt="absent", model="resnet18", batch=128, seed=0,
              compute=None, spread=0.005, rounds=25, schema=2, sweep=(), timeline=True):
    ms = MS if ms is None else ms
    compute = compute or {}
    benches = []
    for k, (case, value) in enumerate(ms.items()):
        gpu_ms = compute.get(case, value * 0.8)
        extra = {
            "approach": case, "backend": "torch", "model": model, "batch_size": batch, "ms_per_batch": value,
            "ms_per_batch_iqr": value * 0.01, "images_per_s": batch / value * 1e3, "compute_ms_per_batch": gpu_ms,
            "upload_ms_per_batch": 1.0, "download_ms_per_batch": 0.1, "enqueue_ms_per_batch": 0.05,
            "latency_p50_ms": value, "latency_p99_ms": value * 1.2, "rel_l2_error": 5e-4, "top1_agreement": 1.0,
            "top5_agreement": 1.0, "peak_device_mb": 900.0, "gpu_compute_cv": 0.002, "sweep": False,
            "floor": {"floor_ms": value * 0.7, "upload_ms": 1.0, "compute_ms": value * 0.7},
            "samples": {"wall": samples(value, spread, rounds, seed * 100 + k),
                        "compute": samples(gpu_ms, spread / 5, rounds, seed * 100 + k + 50)},
        }
        if timeline:
            extra["timeline"] = {
                "gpu": [{"batch": i, "span": s, "stream": st, "start_ms": i * value + o, "end_ms": i * value + o + d}
                        for i in range(3) for s, st, o, d in (("upload", "copy", 0, 1), ("compute", "compute", 1, 2),
                                                              ("download", "compute", 3, 0.2))],
                "host": [{"batch": i, "span": s, "thread": t, "start_ms": i * value + o, "end_ms": i * value + o + 0.5}
                         for i in range(3) for s, t, o in (("enqueue", "main", 0.5), ("postprocess", "worker", 3.3))]}
        benches.append({"name": f"test_approach[torch-{case}]", "extra_info": extra})
    for approach, b in sweep:
        benches.append({"name": f"test_sweep[torch-{approach}-b{b}]", "extra_info": {
            "approach": approach, "backend": "torch", "batch_size": b, "ms_per_batch": 1 + b / 50,
            "images_per_s": b / (1 + b / 50) * 1e3, "latency_p50_ms": 1 + b / 50, "latency_p99_ms": 1.3 + b / 50,
            "sweep": True, "samples": {"wall": samples(1 + b / 50, spread, rounds, b)}}})
    doc = {"machine_info": {"gpu_name": gpu, "tensorrt": trt, "torch": "2.11.0", "model": model,
                            "trtbench_schema": schema},
           "datetime": "2026-11-24T00:00:00", "commit_info": {"id": "abc"}, "benchmarks": benches,
           "trtbench": {"discrimination": {"batch": 128, "distinct_classes": 119, "image_dependent_share": 0.99}}}
    path.write_text(json.dumps(doc))
    return path


def thresholds_file(tmp_path, text=""):
    path = tmp_path / "t.toml"
    path.write_text("[thresholds.wall]\ndefault = 0.10\n[thresholds.compute]\ndefault = 0.05\n" + text)
    return path


def run_main(*args):
    return guarded(cmp.main, [str(a) for a in args])


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
    settings = cmp.Settings.load(thresholds_file(tmp_path, '[fixed.compute]\ncuda_graph = 0.2\n"cuda_graph-b1" = 0.5\n'))
    history = [cmp.Run.load(saved_run(tmp_path / f"{i}.json", seed=i)) for i in range(3)]
    assert cmp.threshold_for("test_approach[torch-cuda_graph-b1]", "compute", settings, history) == (0.5, "fixed")
    assert cmp.threshold_for("test_approach[torch-cuda_graph]", "compute", settings, history) == (0.2, "fixed")
    value, source = cmp.threshold_for("test_approach[torch-fp16]", "compute", settings, history)
    assert source == "history of 3 runs" and value >= settings.floor["compute"]
    assert cmp.threshold_for("test_approach[torch-fp16]", "wall", settings, history[:2]) == (0.10, "regression.toml")
    assert cmp.case_of("test_approach[tensorrt-multi_profile-two_profiles]") == "multi_profile-two_profiles"


def test_noisy_samples_past_the_threshold_are_cant_tell_exit_3(tmp_path, capsys):
    old = saved_run(tmp_path / "0001_a.json", spread=0.4, rounds=6)
    new = saved_run(tmp_path / "0002_b.json", dict(MS, fp16=MS["fp16"] * 1.2), seed=1, spread=0.4, rounds=6)
    assert run_main(old, new) == 3
    assert "can't tell: rerun with more --rounds" in capsys.readouterr().out


@pytest.mark.parametrize("field,kwargs", [("gpu_name", {"gpu": "NVIDIA A100-SXM4-80GB"}),
                                          ("tensorrt", {"trt": "10.13.0"}), ("model", {"model": "resnet50"})])
def test_runs_of_another_gpu_tensorrt_or_model_are_refused(tmp_path, capsys, field, kwargs):
    old, new = saved_run(tmp_path / "a.json", **kwargs), saved_run(tmp_path / "b.json")
    assert run_main(old, new) == 2
    err = capsys.readouterr().err
    assert f"refusing to compare: {field} differs" in err and err.count("\n") == 1


def test_another_batch_size_is_refused(tmp_path):
    with pytest.raises(cmp.Refused, match="batch size 128 vs 64"):
        cmp.compare(cmp.Run.load(saved_run(tmp_path / "c.json")), cmp.Run.load(saved_run(tmp_path / "d.json", batch=64)),
                    cmp.Settings.load())


def test_every_missing_file_is_named(tmp_path, capsys):
    assert run_main(tmp_path / "nope-old.json", tmp_path / "nope-new.json") == 2
    err = capsys.readouterr().err
    assert "nope-old.json" in err and "nope-new.json" in err and err.count("\n") == 1


def test_a_run_that_measured_nothing_is_refused(tmp_path, capsys):
    empty = tmp_path / "0002_b.json"
    empty.write_text(json.dumps({"machine_info": {"gpu_name": "NVIDIA H100 80GB HBM3", "tensorrt": "absent",
                                                  "model": "resnet18", "trtbench_schema": 2}, "benchmarks": []}))
    assert run_main(saved_run(tmp_path / "0001_a.json"), empty) == 2
    assert "measured nothing" in capsys.readouterr().err


def test_a_test_the_old_run_measured_and_the_new_one_lacks_is_not_a_pass(tmp_path, capsys):
    old = saved_run(tmp_path / "0001_a.json")
    new = saved_run(tmp_path / "0002_b.json", {k: v for k, v in MS.items() if k != "overlap"}, seed=1)
    assert run_main(old, new) == 2
    assert "lacks 1 test(s)" in capsys.readouterr().err and "test_approach[torch-overlap]" in old.read_text()
    assert run_main(old, new, "--allow-missing", "*overlap*") == 0  # deselected on purpose


@pytest.mark.parametrize("content,expected", [
    ("[]", "not a pytest-benchmark run"),
    ("{not json", "not valid JSON"),
    ('{"benchmarks": [], "machine_info": {"gpu_name": "x"}}', "saved before per-round samples were recorded"),
])
def test_unusable_json_is_one_line_and_exit_2(tmp_path, capsys, content, expected):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert run_main(saved_run(tmp_path / "a.json"), bad) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("text,expected", [
    (None, "no such file"),
    ("[thresholds.wall\n", "not a readable TOML file"),
    ("[thresholds.wall]\ndefault = 0.1\n[thresholds.compute]\n", "[thresholds.compute] needs a 'default'"),
    ("[thresholds.wall]\ndefault = 12\n[thresholds.compute]\ndefault = 0.1\n", "thresholds.wall.default = 12"),
    ("[thresholds.wall]\ndefault = 0.1\n[thresholds.compute]\ndefault = 0.1\n[decision]\nalpha = 2\n", "0 < alpha < 1"),
])
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
    settings = cmp.Settings.load()
    assert 0 < settings.thresholds["wall"]["default"] < 1 and 0 < settings.thresholds["compute"]["default"] < 1
    assert settings.alpha == 0.002 and settings.floor == {"wall": 0.03, "compute": 0.01}


def test_commands_never_show_a_traceback(tmp_path):
    for command in (["trtbench.compare", str(tmp_path / "x.json"), str(tmp_path / "y.json")],
                    ["trtbench.report", str(tmp_path / "x.json")],
                    ["trtbench.compare", "--thresholds"]):
        done = subprocess.run([sys.executable, "-m", *command], capture_output=True, text=True, cwd=tmp_path,
                              env={"PYTHONPATH": str(cmp.ROOT)})
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.strip().count("\n") == 0, done.stderr


def test_an_internal_error_is_one_line_with_its_own_status(capsys):
    def broken(argv):
        raise KeyError("oops")

    assert guarded(broken) == EXIT_INTERNAL
    assert capsys.readouterr().err.startswith("internal error: KeyError")


# ---------------------------------------------------------------- report

def test_report_renders_markdown_and_every_picture(tmp_path):
    run = saved_run(tmp_path / "0001_a.json", sweep=[(a, b) for a in ("baseline", "uint8_input") for b in (1, 8, 32)])
    assert report.main([str(run), "--out", str(tmp_path / "out")]) == 0
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
    assert report.main([str(run), "--out", str(tmp_path / "o")]) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["report.md", "report.png"]


@pytest.mark.parametrize("content,expected", [
    (None, "no such file"), ("{nope", "not valid JSON"), ("[]", "not a pytest-benchmark run"),
    ('{"benchmarks": [], "machine_info": {}}', "holds no measured benchmark"),
])
def test_report_refuses_unusable_input_in_one_line(tmp_path, capsys, content, expected):
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    assert guarded(report.main, [str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1


def test_report_out_must_be_a_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert report.main([str(saved_run(tmp_path / "a.json")), "--out", str(blocker)]) == 2
    assert "--out" in capsys.readouterr().err
