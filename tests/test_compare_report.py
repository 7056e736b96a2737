"""Regression comparison and report on saved runs (synthetic pytest-benchmark JSON)."""

import json

import pytest

from trtbench import compare as cmp
from trtbench import report

CASES = ["baseline", "reuse_buffers", "pinned_memory", "fp16", "overlap", "async_postprocess", "cuda_graph"]


def saved_run(path, ms, gpu="NVIDIA H100 80GB HBM3", trt="absent", batch=128):
    doc = {
        "machine_info": {"gpu_name": gpu, "tensorrt": trt, "torch": "2.11.0"},
        "datetime": "2026-11-24T00:00:00", "commit_info": {"id": "abc"},
        "benchmarks": [
            {"name": f"test_approach[torch-{case}]",
             "extra_info": {"approach": case, "backend": "torch", "batch_size": batch, "ms_per_batch": value,
                            "ms_per_batch_iqr": value * 0.01, "images_per_s": batch / value * 1e3,
                            "gpu_ms_per_batch": value * 0.8, "rel_l2_error": 5e-4, "top1_agreement": 1.0,
                            "peak_device_mb": 900.0}}
            for case, value in ms.items()
        ],
    }
    path.write_text(json.dumps(doc))
    return path


MS = {c: 30.0 / (i + 1) for i, c in enumerate(CASES)}


def test_identical_runs_no_regression(tmp_path, capsys):
    old, new = saved_run(tmp_path / "0001_a.json", MS), saved_run(tmp_path / "0002_b.json", MS)
    assert cmp.main([str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert "no regression" in out and "test_approach[torch-fp16]" in out


def test_one_approach_12_percent_slower_with_10_percent_threshold_is_flagged(tmp_path, capsys):
    slower = dict(MS, overlap=MS["overlap"] * 1.12, fp16=MS["fp16"] * 1.05)
    old, new = saved_run(tmp_path / "0001_a.json", MS), saved_run(tmp_path / "0002_b.json", slower)
    thresholds = tmp_path / "t.toml"
    thresholds.write_text("[thresholds]\ndefault = 0.10\n")
    assert cmp.main([str(old), str(new), "--thresholds", str(thresholds)]) == 1
    out = capsys.readouterr().out
    flagged = [line for line in out.splitlines() if line.rstrip().endswith("REGRESSION")]
    assert len(flagged) == 1 and "test_approach[torch-overlap]" in flagged[0] and "+12.0%" in flagged[0]
    assert "1 regression(s): test_approach[torch-overlap] 6.000 -> 6.720 ms per batch (+12.0% > 10%)" in out


def test_per_approach_threshold_overrides_default(tmp_path):
    rows = cmp.compare(cmp.Run.load(saved_run(tmp_path / "a.json", MS)),
                       cmp.Run.load(saved_run(tmp_path / "b.json", dict(MS, overlap=MS["overlap"] * 1.12))),
                       {"default": 0.10, "overlap": 0.15})
    assert not cmp.regressions(rows)


def test_different_gpu_is_refused(tmp_path, capsys):
    old = saved_run(tmp_path / "a.json", MS, gpu="NVIDIA A100-SXM4-80GB")
    new = saved_run(tmp_path / "b.json", MS)
    assert cmp.main([str(old), str(new)]) == 2
    err = capsys.readouterr().err
    assert "refusing to compare: gpu_name differs" in err and "A100" in err


def test_different_tensorrt_or_batch_is_refused(tmp_path):
    with pytest.raises(cmp.Refused, match="tensorrt differs"):
        cmp.compare(cmp.Run.load(saved_run(tmp_path / "a.json", MS, trt="10.13.0")),
                    cmp.Run.load(saved_run(tmp_path / "b.json", MS, trt="11.4.1")), {"default": 0.1})
    with pytest.raises(cmp.Refused, match="batch size 128 vs 64"):
        cmp.compare(cmp.Run.load(saved_run(tmp_path / "c.json", MS)),
                    cmp.Run.load(saved_run(tmp_path / "d.json", MS, batch=64)), {"default": 0.1})


def test_missing_baseline_passes_with_a_note(tmp_path, capsys):
    storage = tmp_path / "storage" / "H100" / "Linux-CPython-3.12-64bit"
    storage.mkdir(parents=True)
    saved_run(storage / "0001_first.json", MS)
    assert cmp.main(["--storage", str(tmp_path / "storage")]) == 0
    assert "no baseline" in capsys.readouterr().out
    assert cmp.main([str(tmp_path / "nope.json"), str(storage / "0001_first.json")]) == 0


def test_newest_two_in_storage_are_compared(tmp_path, capsys):
    storage = tmp_path / "s"
    storage.mkdir()
    saved_run(storage / "0001_a.json", MS)
    saved_run(storage / "0002_b.json", dict(MS, baseline=MS["baseline"] * 1.5))
    assert cmp.main(["--storage", str(storage)]) == 1
    assert "test_approach[torch-baseline]" in capsys.readouterr().out


def test_empty_storage_is_an_error(tmp_path, capsys):
    assert cmp.main(["--storage", str(tmp_path)]) == 2


def test_thresholds_by_case_then_approach_then_default():
    thresholds = {"default": 0.1, "cuda_graph": 0.2, "cuda_graph-b1": 0.5}
    assert cmp.case_of("test_approach[torch-cuda_graph-b1]") == "cuda_graph-b1"
    assert cmp.threshold_for("test_approach[torch-cuda_graph-b1]", thresholds) == 0.5
    assert cmp.threshold_for("test_approach[torch-cuda_graph]", thresholds) == 0.2
    assert cmp.threshold_for("test_approach[tensorrt-multi_profile-two_profiles]", thresholds) == 0.1


def test_repo_thresholds_file_is_valid():
    thresholds = cmp.load_thresholds()
    assert 0 < thresholds["default"] < 1


def test_report_renders_markdown_and_png(tmp_path):
    run = saved_run(tmp_path / "0001_a.json", MS)
    assert report.main([str(run), "--out", str(tmp_path / "out")]) == 0
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| baseline | 128 | 30.000" in md and "| cuda_graph | 128 |" in md and "7.00x" in md
    assert "NVIDIA H100 80GB HBM3" in md and "![technique story](report.png)" in md
    png = (tmp_path / "out" / "report.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_report_refuses_a_run_without_figures(tmp_path):
    empty = tmp_path / "e.json"
    empty.write_text(json.dumps({"benchmarks": [], "machine_info": {}}))
    assert report.main([str(empty), "--out", str(tmp_path / "o")]) == 2
