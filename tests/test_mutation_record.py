"""The mutation run's record (mutation/run.py): a verdict is reused only for byte-identical inputs."""

import importlib.metadata
import json
import platform

import pytest

from fixtures.options import backend_problem
from mutation import run as mutation

TABLE = "module  mutants  score\ntrtbench.stats  458  100.0%\n"


@pytest.fixture
def record(tmp_path, monkeypatch):
    path = tmp_path / "record.json"
    monkeypatch.setattr(mutation, "RECORD", path)
    return path


@pytest.fixture
def inputs():
    files = {"trtbench/stats.py": "a" * 64, "tests/test_stats.py": "b" * 64}
    return {**files, "[tool.mutmut]": "c" * 64, "python": "3.11.7"}


def test_the_inputs_are_the_files_mutmut_copies_and_the_settings():
    found = mutation.run_inputs()
    files = {"trtbench/stats.py", "fixtures/options.py", "tests/test_stats.py", "conftest.py", "requirements.txt"}
    assert files <= set(found)
    assert {"mutation/equivalent.toml", "mutation/run.py", "[tool.mutmut]", "python"} <= set(found)
    assert mutation.RECORD_NAME not in found and "README.md" not in found and ".ci/run" not in found
    assert not any("__pycache__" in k or k.endswith(".pyc") for k in found)
    assert all(len(v) == 64 for k, v in found.items() if "/" in k or k == "[tool.mutmut]")
    assert found["installed mutmut"] == importlib.metadata.version("mutmut")
    assert found["backend tensorrt"] == (backend_problem("tensorrt") or "runs here")
    assert found["python"] == f"{platform.python_version()} {platform.machine()}"


def test_the_variables_that_steer_pytest_are_inputs(monkeypatch):
    monkeypatch.setenv("PYTEST_ADDOPTS", "-k stats")
    assert mutation.run_inputs()["environment PYTEST_ADDOPTS"] == "-k stats"


def test_a_link_among_the_files_is_refused(tmp_path, monkeypatch):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("")
    (tmp_path / "tests" / "data").symlink_to(tmp_path / "elsewhere")
    monkeypatch.setattr(mutation, "ROOT", tmp_path)
    with pytest.raises(OSError, match=r"^tests/data is not a plain file or folder$"):
        list(mutation._plain_files(tmp_path / "tests"))
    (tmp_path / "tests" / "data").unlink()
    (tmp_path / "tests" / "__pycache__").mkdir()
    (tmp_path / "tests" / "__pycache__" / "x.pyc").write_text("")
    assert list(mutation._plain_files(tmp_path / "tests")) == [tmp_path / "tests" / "test_a.py"]
    assert list(mutation._plain_files(tmp_path / "missing")) == []


def test_a_written_record_is_the_verdict_for_the_same_inputs(record, inputs):
    mutation.write_record(inputs, "\n" + TABLE, 671)
    found, why = mutation.recorded_verdict(dict(inputs))
    assert found is not None and found["table"] == TABLE.strip().splitlines() and found["seconds"] == 671
    assert why.startswith(f"every input (4) is that of the recorded passing run of {found['recorded']} (671 s)")


@pytest.mark.parametrize(
    "change, named",
    [
        (lambda d: d.update({"trtbench/stats.py": "d" * 64}), "trtbench/stats.py"),
        (lambda d: d.pop("tests/test_stats.py"), "tests/test_stats.py"),
        (lambda d: d.update({"tests/test_new.py": "e" * 64}), "tests/test_new.py"),
        (lambda d: d.update({"python": "3.12.1"}), "python"),
    ],
)
def test_any_changed_removed_or_added_input_runs_again_and_is_named(record, inputs, change, named):
    mutation.write_record(inputs, TABLE, 600)
    change(inputs)
    found, why = mutation.recorded_verdict(inputs)
    assert found is None
    assert why.startswith("inputs changed since the recorded run of ") and why.endswith(f": {named}")


def test_many_changes_are_counted_past_six(record, inputs):
    mutation.write_record(inputs, TABLE, 600)
    inputs.update({f"tests/t{i}.py": "f" * 64 for i in range(9)})
    assert mutation.recorded_verdict(inputs)[1].endswith(
        ": tests/t0.py, tests/t1.py, tests/t2.py, tests/t3.py, tests/t4.py, tests/t5.py and 3 more"
    )


UNREADABLE = "mutation/record.json is unreadable"


@pytest.mark.parametrize(
    "text, why",
    [
        (None, "no mutation/record.json"),
        ("{not json", f"{UNREADABLE} (JSONDecodeError("),
        ('{"inputs": {}, "table": []}', f"{UNREADABLE} (KeyError('seconds')"),
        ('{"inputs": [], "table": [], "seconds": 1, "recorded": "x"}', f"{UNREADABLE} (TypeError("),
        ('{"inputs": {}, "table": "x", "seconds": 1, "recorded": "x"}', f"{UNREADABLE} (TypeError("),
        ('{"inputs": {}, "table": [1], "seconds": 1, "recorded": "x"}', f"{UNREADABLE} (TypeError("),
        ("[]", f"{UNREADABLE} (TypeError("),
    ],
)
def test_a_missing_or_unreadable_record_runs_again_and_says_why(record, inputs, text, why):
    if text is not None:
        record.write_text(text)
    found, reason = mutation.recorded_verdict(inputs)
    assert found is None and reason.startswith(why)


def _no_mutmut(max_children):
    raise AssertionError("mutmut must not run")


def test_the_recorded_verdict_stands_without_running_mutmut(record, monkeypatch, capsys, inputs):
    monkeypatch.setattr(mutation, "run_inputs", lambda: inputs)
    monkeypatch.setattr(mutation, "run_mutmut", _no_mutmut)
    mutation.write_record(inputs, TABLE, 600)
    assert mutation.main([]) == 0
    out = capsys.readouterr().out
    assert "mutation testing: every input (4) is that of the recorded passing run of" in out
    assert "trtbench.stats  458  100.0%" in out
    assert out.rstrip().endswith("mutation testing: passed (the recorded verdict; --force runs it again)")


@pytest.mark.parametrize("force", [False, True])
def test_changed_inputs_or_force_run_mutmut_and_a_failed_run_records_nothing(
    record, monkeypatch, capsys, inputs, force
):
    monkeypatch.setattr(mutation, "run_inputs", lambda: inputs)
    mutation.write_record(inputs, TABLE, 600)
    if not force:
        inputs = {**inputs, "trtbench/stats.py": "d" * 64}
    before = record.read_text()
    ran = []
    monkeypatch.setattr(mutation, "run_mutmut", lambda n: ran.append(n) or 2)
    monkeypatch.setattr(mutation, "LOG", record.parent / "mutmut-run.log")
    (record.parent / "mutmut-run.log").write_text("boom\n")
    assert mutation.main(["--force"] if force else []) == 2
    out = capsys.readouterr().out
    assert ran and record.read_text() == before
    expected = "--force" if force else "inputs changed since the recorded run of"
    assert f"mutation testing runs: {expected}" in out and "error: mutmut run exited with 2" in out


def test_inputs_that_cannot_be_hashed_run_everything_and_say_why(record, monkeypatch, capsys):
    def cannot():
        raise OSError("tests/data is not a plain file or folder")

    monkeypatch.setattr(mutation, "run_inputs", cannot)
    monkeypatch.setattr(mutation, "run_mutmut", lambda n: 2)
    monkeypatch.setattr(mutation, "LOG", record.parent / "mutmut-run.log")
    (record.parent / "mutmut-run.log").write_text("")
    assert mutation.main([]) == 2
    out = capsys.readouterr().out
    assert "mutation testing runs: its inputs cannot be hashed (tests/data is not a plain file or folder)" in out


def _judged(monkeypatch, inputs, verdict, mutants=()):
    """main() past mutmut: these mutants loaded, and the verdict the judging prints a table for."""
    monkeypatch.setattr(mutation, "run_inputs", lambda: inputs)
    monkeypatch.setattr(mutation, "run_mutmut", lambda n: 0)
    monkeypatch.setattr(mutation, "load_mutants", lambda paths: list(mutants))
    monkeypatch.setattr(mutation, "judge", lambda *args: print(TABLE, end="") or verdict)


@pytest.mark.parametrize("verdict", [0, 1, 2])
def test_only_a_passing_run_writes_the_record(record, monkeypatch, capsys, inputs, verdict):
    _judged(monkeypatch, inputs, verdict)
    assert mutation.main([]) == verdict
    if verdict == 0:
        found, _ = mutation.recorded_verdict(inputs)
        assert found["table"] == TABLE.strip().splitlines()
        assert "(recorded in mutation/record.json: commit it with the change)" in capsys.readouterr().out
    else:
        assert not record.exists()


def test_a_record_that_cannot_be_written_leaves_the_verdict_and_says_so(tmp_path, monkeypatch, capsys, inputs):
    (tmp_path / "a_file").write_text("")
    monkeypatch.setattr(mutation, "RECORD", tmp_path / "a_file" / "record.json")
    _judged(monkeypatch, inputs, 0)
    assert mutation.main([]) == 0
    out = capsys.readouterr().out
    assert "(not recorded: " in out and "the next run runs everything again)" in out
    assert out.rstrip().splitlines()[-1].startswith("mutation testing: passed in ")


def test_a_run_cut_short_writes_no_record(record, monkeypatch, inputs):
    unrun = mutation.Mutant("trtbench.stats.x_decide__mutmut_1", "trtbench.stats", "trtbench/stats.py", "decide", None)
    _judged(monkeypatch, inputs, 0, [unrun])
    assert mutation.main([]) == 2
    assert not record.exists()


def test_judging_again_neither_runs_mutmut_nor_writes_the_record(record, monkeypatch, inputs):
    _judged(monkeypatch, inputs, 0)
    monkeypatch.setattr(mutation, "run_mutmut", _no_mutmut)
    monkeypatch.setattr(mutation, "run_inputs", _no_mutmut)
    assert mutation.main(["--again"]) == 0
    assert not record.exists()


def test_the_committed_record_is_a_passing_run_of_this_machine_kind():
    record = json.loads(mutation.RECORD.read_text())
    header, *rows = [line.split() for line in record["table"] if line.startswith(("module", "trtbench.", "fixtures."))]
    assert header[:2] == ["module", "mutants"] and header[-2:] == ["score", "floor"]
    assert {row[0] for row in rows} == {mutation.module_of(p) for p in mutation.mutmut_config()["only_mutate"]}
    assert all(float(row[-2].rstrip("%")) >= float(row[-1].rstrip("%")) for row in rows)
    assert {"trtbench/stats.py", "[tool.mutmut]", "python", "installed mutmut", "backend torch"} <= set(
        record["inputs"]
    )
