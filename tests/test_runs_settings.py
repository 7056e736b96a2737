"""The saved-run format (trtbench/runs.py) and regression.toml's settings (trtbench/settings.py)
on their own: what a record keeps of a benchmark's figures and what it refuses, what a loaded
run keeps besides the tests, the storage folders and pruning, and the A/B gate's settings.
(Each pins a behaviour a mutation test found unchecked: see mutation/run.py.)"""

import json
import os
from pathlib import Path

import pytest

from tests.helpers import saved_run
from trtbench import runs
from trtbench import settings as st
from trtbench.cli import Unusable
from trtbench.runs import Malformed, SavedRun, TestRecord

WALL = [2.0, 2.1, 1.9]


def info(**extra):
    """The figures of a measured (non-sweep) test, as the suite saves them."""
    return {"batch_size": 8, "ms_per_batch": 2.0, "samples": {"wall": list(WALL)}, **extra}


def refused(figures):
    with pytest.raises(ValueError) as caught:
        TestRecord.from_info("t", figures)
    return str(caught.value)


# ---------------------------------------------------------------- a test's record


def test_a_record_keeps_the_known_metrics_it_was_given_and_its_identity():
    figures = info(
        approach="fp16",
        backend="tensorrt",
        sweep=False,
        samples={"wall": WALL, "compute": [1.0], "upload": [], "gpu_busy": None, "not_a_metric": [1.0]},
    )
    record = TestRecord.from_info("test_approach[tensorrt-fp16]", figures)
    assert record == TestRecord(
        "test_approach[tensorrt-fp16]",
        "fp16",
        "tensorrt",
        8,
        False,
        {"wall": (2.0, 2.1, 1.9), "compute": (1.0,)},
        figures,
    )
    assert record.info.get("ms_per_batch") == 2.0 and record.info.get("absent") is None
    unnamed = TestRecord.from_info("t", info())
    assert (unnamed.approach, unnamed.backend, unnamed.sweep) == ("?", "?", False)
    assert TestRecord.from_info("t", info(sweep=1, images_per_s=4e3, latency_p99_ms=2.5)).sweep is True


def test_a_record_of_gpu_time_alone_is_a_measurement():
    compute_only = info(samples={"compute": [1.0, 1.1]})
    assert TestRecord.from_info("t", compute_only).samples == {"compute": (1.0, 1.1)}
    assert runs.measured(compute_only) and runs.measured(info())
    for figures in (info(samples={"upload": [1.0]}), info(samples={"wall": []}), {"samples": [1.0]}, None, {}):
        assert not runs.measured(figures)


@pytest.mark.parametrize(
    "figures,message",
    [
        (None, "no per-round samples"),
        ({"batch_size": 8}, "no per-round samples"),
        ({"batch_size": 8, "samples": [1.0]}, "no per-round samples"),
        (info(samples={"upload": [1.0], "wall": []}), "neither wall nor compute samples"),
        (info(batch_size=0), "batch_size 0 is not a batch size"),
        (info(batch_size=True), "batch_size True is not a batch size"),
        (info(batch_size=2.0), "batch_size 2.0 is not a batch size"),
        (info(ms_per_batch=0), "ms_per_batch 0 is not a time or rate above zero"),
        (info(sweep=True, images_per_s=100.0), "latency_p99_ms None is not a time or rate above zero"),
        (info(sweep=True, latency_p99_ms=1.0), "images_per_s None is not a time or rate above zero"),
    ],
)
def test_a_record_refuses_figures_that_break_the_format(figures, message):
    assert refused(figures) == message


def span(kind="compute", start=1.0, end=2.0, where="stream"):
    return {"span": kind, where: "s0", "start_ms": start, "end_ms": end}


def test_a_timeline_of_either_side_alone_and_a_span_of_no_length_are_well_formed():
    for timeline in ({"gpu": [span()]}, {"host": [span("enqueue", where="thread")]}, {}, {"gpu": [span(end=1.0)]}):
        assert TestRecord.from_info("t", info(timeline=timeline)).info["timeline"] == timeline


@pytest.mark.parametrize(
    "timeline",
    [
        [span()],
        {"gpu": ["not a span"]},
        {"gpu": [span(end=0.5)]},  # ends before it starts
        {"gpu": [span("draw")]},
        {"gpu": [{"span": "compute", "start_ms": 1.0, "end_ms": 2.0}]},  # on no stream or thread
        {"host": [span(start=True)]},
        {"host": [span(end=float("inf"))]},
        {"gpu": {"span": "compute"}},  # a side that is not a list
        {"gpu": [span()], "host": "spans"},
    ],
)
def test_a_malformed_timeline_is_refused(timeline):
    assert refused(info(timeline=timeline)) == (
        "a malformed timeline (each span needs span, stream or thread, start_ms and end_ms)"
    )


def test_a_writer_is_refused_the_figures_a_reader_would_refuse():
    runs.check_figures("test_approach[torch-fp16]", info())
    with pytest.raises(Malformed) as caught:
        runs.check_figures("test_approach[torch-fp16]", info(batch_size=0))
    assert (
        str(caught.value)
        == "test_approach[torch-fp16]: would save malformed figures (batch_size 0 is not a batch size)"
    )


# ---------------------------------------------------------------- a saved run


def test_a_loaded_run_keeps_its_commit_time_notes_and_discrimination(tmp_path):
    path = saved_run(tmp_path / "0001_a.json", {"fp16": 6.0})
    doc = json.loads(path.read_text())
    doc["trtbench"]["notes"] = ["first", 2]
    path.write_text(json.dumps(doc))
    run = SavedRun.load(path)
    assert run.commit == {"id": "abc"} and run.saved_at == "2026-11-24T00:00:00"
    assert run.notes == ("first", "2")
    assert run.discrimination == {"batch": 128, "distinct_classes": 119, "image_dependent_share": 0.99}
    assert run.machine["gpu_name"] == "NVIDIA H100 80GB HBM3" and list(run.tests) == ["test_approach[torch-fp16]"]
    for key in ("trtbench", "commit_info", "datetime"):
        doc.pop(key)
    doc["trtbench"], doc["commit_info"] = ["not a section"], "not a commit"
    path.write_text(json.dumps(doc))
    bare = SavedRun.load(path)
    assert (bare.commit, bare.saved_at, bare.notes, bare.discrimination) == ({}, "", (), None)


@pytest.mark.parametrize("schema", ["3", 1.0, True, None])
def test_a_run_whose_schema_is_not_a_number_from_2_on_is_refused(tmp_path, schema):
    path = saved_run(tmp_path / "0001_a.json")
    doc = json.loads(path.read_text())
    doc["machine_info"]["trtbench_schema"] = schema
    path.write_text(json.dumps(doc))
    with pytest.raises(Malformed) as caught:
        SavedRun.load(path)
    if schema is None:
        assert str(caught.value).endswith("not of this suite (its machine_info has no trtbench_schema)")
    else:
        assert str(caught.value).startswith(f"{path}: saved before per-round samples were recorded (schema {schema!r}")


def test_history_names_every_run_it_leaves_out_and_why(tmp_path):
    new = SavedRun.load(saved_run(tmp_path / "0003_new.json"))
    same = saved_run(tmp_path / "0001_same.json")
    other = saved_run(tmp_path / "0002_other.json", gpu="NVIDIA H200")
    broken = tmp_path / "0004_broken.json"
    broken.write_text("{}")
    kept, left_out = runs.history(new, [same, other, broken, new.path])
    assert [r.path for r in kept] == [same]
    assert left_out == [
        f"left out: {broken}: not a pytest-benchmark run (expected an object with 'benchmarks' and 'machine_info')",
        f"left out: {other}: another GPU, TensorRT version or model",
    ]


# ---------------------------------------------------------------- storage


def test_the_storage_folder_names_the_gpu_and_tensorrt_in_safe_characters():
    assert runs.storage_tag({"gpu_name": "NVIDIA H100 80GB HBM3", "tensorrt": "10.13.0.35"}) == (
        "NVIDIA_H100_80GB_HBM3-trt-10.13.0.35"
    )
    assert runs.storage_tag({"gpu_name": "NVIDIA GeForce RTX 4090 (a/b)", "tensorrt": "absent"}) == (
        "NVIDIA_GeForce_RTX_4090_a_b_-trt-absent"
    )


def test_a_runs_own_section_holds_its_notes_and_discrimination():
    assert runs.run_section(("a", "b"), {"batch": 4}) == {"discrimination": {"batch": 4}, "notes": ["a", "b"]}
    assert runs.run_section((), None) == {"discrimination": None, "notes": []}


def test_prune_keeps_the_newest_runs_of_each_folder(tmp_path):
    made = []
    for folder, number in (("a", 1), ("a", 2), ("a", 3), ("b", 7), ("b", 9)):
        path = tmp_path / folder / "machine" / f"{number:04d}_run.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
        os.utime(path, (number, number))
        made.append(path)
    (tmp_path / "a" / "machine" / "notes.json").write_text("{}")  # not a saved run: never removed
    assert runs.prune(tmp_path, 2) == [made[0]]
    assert sorted(p.name for p in tmp_path.rglob("*.json")) == [
        "0002_run.json",
        "0003_run.json",
        "0007_run.json",
        "0009_run.json",
        "notes.json",
    ]
    assert runs.prune(tmp_path, 1) == [made[1], made[3]]
    assert runs.saved_runs(tmp_path) == [made[2], made[4]]
    assert runs.prune(tmp_path, 1) == []
    with pytest.raises(Unusable) as caught:
        runs.prune(tmp_path, 0)
    assert str(caught.value) == "--keep 0: keep at least 1 run per folder"


# ---------------------------------------------------------------- the A/B gate's settings

FULL = "[thresholds.wall]\ndefault = 0.10\n[thresholds.compute]\ndefault = 0.05\n"


def load(tmp_path, text):
    path = tmp_path / "s.toml"
    path.write_text(text + FULL)  # top-level keys first
    return st.Settings.load(path)


def ab_refusal(tmp_path, text):
    path = tmp_path / "s.toml"
    path.write_text(text + FULL)
    with pytest.raises(st.Refused) as caught:
        st.Settings.load(path)
    return str(caught.value).removeprefix(f"--thresholds {path}: ")


def test_ab_defaults_without_an_ab_section(tmp_path):
    s = load(tmp_path, "")
    assert s.ab == {"wall": {"default": 0.05}, "compute": {"default": 0.05}}
    assert (s.ab_alpha, s.ab_ok_alpha) == (0.01, 0.05)
    assert isinstance(s.ab_alpha, float) and isinstance(s.ab_ok_alpha, float)


def test_ab_thresholds_and_levels_are_read_per_case_then_approach_then_default(tmp_path):
    s = load(
        tmp_path,
        '[ab]\nalpha = 0.02\nok_alpha = 0.1\n[ab.wall]\ndefault = 0.08\nfp16 = 0.2\n"fp16-b1" = 0.3\n'
        "[ab.compute]\ndefault = 0.02\n",
    )
    assert (s.ab_alpha, s.ab_ok_alpha) == (0.02, 0.1)
    assert s.ab == {"wall": {"default": 0.08, "fp16": 0.2, "fp16-b1": 0.3}, "compute": {"default": 0.02}}
    assert s.ab_threshold("test_approach[torch-fp16-b1]", "wall") == 0.3
    assert s.ab_threshold("test_approach[torch-fp16]", "wall") == 0.2
    assert s.ab_threshold("test_approach[torch-overlap]", "wall") == 0.08
    assert s.ab_threshold("test_approach[torch-fp16]", "compute") == 0.02
    edges = load(tmp_path, "[ab]\nalpha = 1e-9\nok_alpha = 0.499\n")  # just inside (0, 0.5)
    assert (edges.ab_alpha, edges.ab_ok_alpha) == (1e-9, 0.499)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("ab = 5\n", "ab = 5 must be a table ([ab])"),
        ("[ab.wall]\nfp16 = 0.1\n", "[ab.wall] needs a 'default'"),
        ("[ab.compute]\nfp16 = 0.1\n", "[ab.compute] needs a 'default'"),
        ("[ab.wall]\ndefault = 20\n", "ab.wall.default = 20 is not a fraction such as 0.10"),
        ("[ab]\nwall = 0.1\n", "[ab.wall] must be a table of fractions"),
        ("[ab]\nalpha = 0\n", "ab.alpha = 0 is not a significance level in (0, 0.5)"),
        ("[ab]\nalpha = 0.5\n", "ab.alpha = 0.5 is not a significance level in (0, 0.5)"),
        ("[ab]\nalpha = true\n", "ab.alpha = True is not a significance level in (0, 0.5)"),
        ('[ab]\nalpha = "0.01"\n', "ab.alpha = '0.01' is not a significance level in (0, 0.5)"),
        ("[ab]\nok_alpha = 0\n", "ab.ok_alpha = 0 is not a significance level in (0, 0.5)"),
        ("[ab]\nok_alpha = 0.5\n", "ab.ok_alpha = 0.5 is not a significance level in (0, 0.5)"),
        ("[ab]\nok_alpha = false\n", "ab.ok_alpha = False is not a significance level in (0, 0.5)"),
    ],
)
def test_bad_ab_settings_are_refused_naming_the_entry(tmp_path, text, expected):
    assert ab_refusal(tmp_path, text) == expected


def test_the_repo_settings_hold_the_ab_gates_thresholds():
    s = st.Settings.load(Path(__file__).resolve().parents[1] / "regression.toml")
    assert s.ab_threshold("test_approach[torch-fp16]", "wall") == s.ab["wall"]["default"]
    assert 0 < s.ab_alpha < 0.5 and 0 < s.ab_ok_alpha < 0.5
