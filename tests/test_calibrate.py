"""A/A calibration from saved runs: thresholds per test and metric, and no false alarm."""

import json
import tomllib

from tests.helpers import MS, saved_run, trtbench
from trtbench.settings import DEFAULT_THRESHOLDS, Settings


def test_calibration_writes_thresholds_from_the_spread_and_finds_no_false_alarm(tmp_path, capsys):
    runs = [saved_run(tmp_path / f"000{i}_aa.json", seed=i) for i in range(1, 6)]
    out = tmp_path / "calibrated.toml"
    assert trtbench("calibrate", *["--from-runs", *map(str, runs), "--out", str(out)]) == 0
    table = tomllib.loads(out.read_text())["fixed"]
    assert Settings.load(out).fixed == table  # usable as it is: trtbench compare --thresholds calibrated.toml
    assert set(table) == {"wall", "compute"} and "fp16" in table["wall"] and "uint8_input" in table["compute"]
    assert all(v >= 0.03 for v in table["wall"].values()) and all(v >= 0.01 for v in table["compute"].values())
    text = capsys.readouterr().out
    assert "no false alarm between runs of the same code" in text and text.count("A/A: ") == 5


def test_calibration_reports_a_false_alarm_with_exit_1(tmp_path, capsys):
    """Four quiet runs and one whose fp16 is 20% slower: the spread cannot hide it from a leave-one-out check."""
    runs = [saved_run(tmp_path / f"000{i}_aa.json", seed=i) for i in range(1, 5)]
    runs.append(saved_run(tmp_path / "0005_slow.json", dict(MS, fp16=MS["fp16"] * 1.2), seed=4))
    code = trtbench("calibrate", *["--from-runs", *map(str, runs), "--out", str(tmp_path / "c.toml")])
    assert code == 1 and "false alarm(s)" in capsys.readouterr().out


def test_calibration_needs_one_run_more_than_a_history(tmp_path, capsys):
    runs = [saved_run(tmp_path / f"000{i}_aa.json", seed=i) for i in range(1, 5)]
    assert trtbench("calibrate", *["--from-runs", *map(str, runs)]) == 2
    assert "--from-runs: 4 run(s) given; a calibration needs at least 5 runs" in capsys.readouterr().err


def test_runs_of_another_gpu_or_other_tests_are_refused_before_anything_is_written(tmp_path, capsys):
    runs = [saved_run(tmp_path / f"000{i}_aa.json", seed=i) for i in range(1, 5)]
    out = tmp_path / "c.toml"
    other_gpu = saved_run(tmp_path / "0005_a100.json", seed=5, gpu="NVIDIA A100")
    assert trtbench("calibrate", *["--from-runs", *map(str, runs + [other_gpu]), "--out", str(out)]) == 2
    assert "refusing to compare: gpu_name differs" in capsys.readouterr().err and not out.exists()
    fewer = saved_run(tmp_path / "0006_fewer.json", {k: v for k, v in MS.items() if k != "fp16"}, seed=6)
    assert trtbench("calibrate", *["--from-runs", *map(str, runs + [fewer]), "--out", str(out)]) == 2
    assert "measured different tests" in capsys.readouterr().err and not out.exists()


def test_a_run_given_twice_is_refused(tmp_path, capsys):
    runs = [saved_run(tmp_path / f"000{i}_aa.json", seed=i) for i in range(1, 5)]
    assert trtbench("calibrate", *["--from-runs", *map(str, runs + [runs[0]])]) == 2
    assert "a run is given twice" in capsys.readouterr().err


def test_copies_of_one_run_are_no_aa_set(tmp_path, capsys):
    runs = [saved_run(tmp_path / f"000{i}_aa.json", seed=i) for i in range(1, 5)]
    copy = tmp_path / "0005_copy.json"
    copy.write_bytes(runs[0].read_bytes())
    out = tmp_path / "c.toml"
    assert trtbench("calibrate", "--from-runs", *runs, copy, "--out", out) == 2
    assert "0005_copy.json holds the same samples as 0001_aa.json" in capsys.readouterr().err and not out.exists()


def test_a_calibrated_file_keeps_the_settings_it_was_made_with(tmp_path):
    """Every section but [fixed] as calibrate read it, the A/B gate's too; [fixed] one entry
    per case, each at least the floor."""
    runs = [saved_run(tmp_path / f"000{i}_aa.json", seed=i) for i in range(1, 6)]
    text = DEFAULT_THRESHOLDS.read_text()
    for was, now in (  # values other than the built-in defaults, so a section left out shows
        ("history_window = 10", "history_window = 7"),
        ("alpha = 0.01\nok_alpha = 0.05", "alpha = 0.02\nok_alpha = 0.1"),
        ("[ab.compute]\ndefault = 0.01", "[ab.compute]\ndefault = 0.015"),
    ):
        assert was in text
        text = text.replace(was, now)
    given = tmp_path / "given.toml"
    given.write_text(text)
    out = tmp_path / "c.toml"
    assert trtbench("calibrate", "--from-runs", *runs, "--thresholds", given, "--out", out) == 0
    made, used = Settings.load(out), Settings.load(given)
    assert (used.history_window, used.ab_alpha, used.ab_ok_alpha) == (7, 0.02, 0.1)
    kept = ("thresholds", "floor", "alpha", "history_min_runs", "history_window", "ab", "ab_alpha", "ab_ok_alpha")
    assert {k: getattr(made, k) for k in kept} == {k: getattr(used, k) for k in kept}
    assert len(made.fixed["wall"]) == 9 and all(v >= used.floor["wall"] for v in made.fixed["wall"].values())


def test_two_backends_of_one_case_give_one_entry_the_larger_threshold(tmp_path):
    """Thresholds are keyed by case (``fp16``): a run of both backends must still give a file
    that loads, holding the larger of the two backends' thresholds."""
    runs = []
    for i in range(1, 6):
        path = saved_run(tmp_path / f"000{i}_aa.json", seed=i)
        noisy = json.loads(saved_run(tmp_path / f"noisy{i}.json", seed=i + 10, spread=0.02).read_text())
        doc = json.loads(path.read_text())
        for bench in noisy["benchmarks"]:
            bench["name"] = bench["name"].replace("[torch-", "[tensorrt-")
            bench["extra_info"]["backend"] = "tensorrt"
        doc["benchmarks"] += noisy["benchmarks"]
        path.write_text(json.dumps(doc))
        runs.append(path)
    out = tmp_path / "two.toml"
    assert trtbench("calibrate", "--from-runs", *runs, "--out", out) == 0
    fixed = Settings.load(out).fixed
    torch_only = tmp_path / "torch.toml"
    assert (
        trtbench(
            "calibrate",
            "--from-runs",
            *[saved_run(tmp_path / f"100{i}_t.json", seed=i) for i in range(1, 6)],
            "--out",
            torch_only,
        )
        == 0
    )
    assert fixed["wall"]["fp16"] > Settings.load(torch_only).fixed["wall"]["fp16"]


def test_runs_too_far_apart_are_refused_before_a_file_is_written(tmp_path, capsys):
    runs = [saved_run(tmp_path / f"000{i}_aa.json", seed=i) for i in range(1, 5)]
    runs.append(saved_run(tmp_path / "0005_far.json", dict(MS, cuda_graph=MS["cuda_graph"] * 12), seed=5))
    out = tmp_path / "c.toml"
    assert trtbench("calibrate", "--from-runs", *runs, "--out", out) == 2
    assert "cuda_graph] wall: the history's medians" in capsys.readouterr().err and not out.exists()
