"""The mutation run's record (mutation/run.py): a verdict is reused only for byte-identical inputs."""

import json

import pytest

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
    assert all(len(v) == 64 for k, v in found.items() if k != "python")


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


def test_without_git_the_run_goes_ahead_and_says_why(record, monkeypatch, capsys):
    def no_git():
        raise OSError("git: not found")

    monkeypatch.setattr(mutation, "run_inputs", no_git)
    monkeypatch.setattr(mutation, "run_mutmut", lambda n: 2)
    monkeypatch.setattr(mutation, "LOG", record.parent / "mutmut-run.log")
    (record.parent / "mutmut-run.log").write_text("")
    assert mutation.main([]) == 2
    assert "mutation testing runs: git cannot list the inputs (git: not found)" in capsys.readouterr().out


def test_the_committed_record_is_a_passing_run_with_a_table():
    record = json.loads(mutation.RECORD.read_text())
    assert record["table"][0].split()[:2] == ["module", "mutants"]
    assert set(record["inputs"]) >= {"trtbench/stats.py", "[tool.mutmut]", "python"}
