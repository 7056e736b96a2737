"""The A/B gate and bisect: the decision on per-process values, the schedule, shards and
their merge, refusals in one line, and both commands through their whole flow on the CPU
(git worktrees, alternating processes of the real suite through the CPU doubles of
tests/cpu_suite.py, a slowdown planted by tests/plant.py outside the product code)."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import saved_run, trtbench
from trtbench import ab
from trtbench.checkouts import Checkout
from trtbench.cli import Unusable
from trtbench.commands.bisect import first_slow, step_settings
from trtbench.runs import SavedRun
from trtbench.settings import Settings
from trtbench.stats import decide_ab

ROOT = Path(__file__).resolve().parents[1]


def values(level, cv, n, seed):
    return list(level * np.exp(cv * np.random.default_rng(seed).standard_normal(n)))


# ---------------------------------------------------------------- the decision


def test_a_change_past_the_threshold_and_significant_is_a_regression():
    d = decide_ab(values(5.0, 0.01, 5, 1), values(5.5, 0.01, 5, 2), 0.05, 0.01)
    assert d.verdict == "REGRESSION" and 0.08 < d.change < 0.12 and d.p_value < 0.01 and d.ci[0] > 0
    assert d.reason.startswith("slower by +") and "past 5.0%" in d.reason


def test_no_change_with_a_narrow_interval_is_ok():
    d = decide_ab(values(5.0, 0.002, 5, 1), values(5.0, 0.002, 5, 2), 0.02, 0.01)
    assert d.verdict == "ok" and d.ci[1] < 0.02 and d.reason.startswith("any slowdown is under 2.0%")


def test_noise_wider_than_the_threshold_is_cant_tell_not_a_guess():
    d = decide_ab([5.0, 6.0, 4.2], [5.5, 4.4, 6.1], 0.05, 0.01)
    assert d.verdict == "can't tell" and d.ci[1] > 0.05 and "more processes" in d.reason


def test_ok_is_an_equivalence_bound_not_the_reported_interval():
    """ok: the one-sided 95% upper bound below the threshold (TOST), though the 99% interval
    reported still reaches past it; with ok_alpha as strict as alpha it is can't tell."""
    a, b = [5.00, 5.05, 4.98, 5.02], [5.01, 5.04, 5.03, 4.99]
    d = decide_ab(a, b, 0.01, 0.01)
    assert d.verdict == "ok" and d.ci[1] > 0.01 and d.reason == "any slowdown is under 1.0%"
    assert decide_ab(a, b, 0.01, 0.01, ok_alpha=0.005).verdict == "can't tell"


def test_faster_and_small_significant_changes():
    assert decide_ab(values(5.0, 0.01, 6, 1), values(4.0, 0.01, 6, 2), 0.05, 0.01).verdict == "faster"
    small = decide_ab(values(5.0, 0.001, 8, 1), values(5.1, 0.001, 8, 2), 0.05, 0.01)
    assert small.verdict == "ok" and small.p_value < 0.01  # significant, but below the threshold


def test_identical_values_and_too_few_processes():
    same = decide_ab([2.0, 2.0, 2.0], [2.0, 2.0, 2.0], 0.01, 0.01)
    assert same.verdict == "ok" and same.p_value == 1.0 and same.ci == (0.0, 0.0)
    one = decide_ab([2.0], [3.0], 0.01, 0.01)
    assert one.verdict == "can't tell" and one.reason == "too few processes"
    with pytest.raises(ValueError, match="positive times"):
        decide_ab([2.0, float("nan")], [2.0, 2.0], 0.01, 0.01)
    with pytest.raises(ValueError, match="not a fraction"):
        decide_ab([2.0, 2.0], [2.0, 2.0], 0, 0.01)


def test_aa_processes_of_identical_code_flag_nothing():
    """200 A/A gates of 5 + 5 processes at the noise of a steady test: no false regression."""
    flagged = [
        decide_ab(values(3.2, 0.015, 5, 2 * k), values(3.2, 0.015, 5, 2 * k + 1), 0.05, 0.01).verdict
        for k in range(200)
    ]
    assert flagged.count("REGRESSION") == 0 and flagged.count("ok") > 150


def test_the_h200_ab_processes_decide_as_measured():
    """The interleaved A/B from the H200 (tests/data: 7 + 7 processes, B with a host busy-wait of
    about 10% of the wall time in baseline, pinned_memory and fp16, nothing in cuda_graph)."""
    record = json.loads((Path(__file__).parent / "data" / "h200-ab-process-medians.json").read_text())
    verdicts = {}
    for test, metrics in record["tests"].items():
        for metric, sides in metrics.items():
            threshold = 0.05 if metric == "wall" else 0.01
            verdicts[test, metric] = decide_ab(sides["A"], sides["B"], threshold, 0.01).verdict
    assert verdicts["test_approach[torch-fp16]", "wall"] == "REGRESSION"
    assert verdicts["test_approach[torch-pinned_memory]", "wall"] == "REGRESSION"
    assert verdicts["test_approach[torch-cuda_graph]", "wall"] == "ok"
    assert verdicts["test_approach[torch-baseline]", "wall"] == "can't tell"  # its processes scatter by 11%
    assert all(v != "REGRESSION" for (_, metric), v in verdicts.items() if metric == "compute")


def test_the_h200_planted_gate_decides_as_measured_under_the_current_rule(tmp_path, capsys):
    """The planted gate of the H200 in two shards (tests/data: 4 + 4 processes each; B with a GPU
    sleep of about 2% of the GPU compute in cuda_graph, gpu_postprocess and uint8_input, and a
    host busy-wait in the serial and overlapped approaches that did not make B's processes
    steadily slower: README, "Measured on an H200"). Merged, then re-decided from the
    per-process values with regression.toml as it is now: the three GPU plants and nothing else."""
    shards = [Path(__file__).parent / "data" / f"h200-planted-gate-shard{i}.json" for i in (1, 2)]
    records, rows = ab.merge(shards)
    assert len(records) == 2 and len(rows) == 20
    settings = Settings.load()
    redecided = {
        (row.test, row.metric): decide_ab(
            d.a_values, d.b_values, d.threshold, settings.ab_alpha, settings.ab_ok_alpha
        ).verdict
        for row in rows
        for d in [row.decision]
    }
    assert redecided == {(row.test, row.metric): row.verdict for row in rows}
    flagged = sorted(key for key, verdict in redecided.items() if verdict in ("REGRESSION", "faster"))
    assert flagged == [
        ("test_approach[torch-cuda_graph]", "compute"),
        ("test_approach[torch-gpu_postprocess]", "compute"),
        ("test_approach[torch-uint8_input]", "compute"),
    ]
    assert all(redecided[key] == "REGRESSION" for key in flagged)
    assert trtbench("ab", "--merge", *shards, "--out", tmp_path / "merged") == 1
    assert "3 regression(s)" in capsys.readouterr().out
    assert (tmp_path / "merged" / "ab.md").read_text().count("REGRESSION") >= 3


# ---------------------------------------------------------------- schedule, table, shards


def test_only_what_the_backend_can_run_is_compared():
    assert ab.runnable("benchmarks/test_approaches.py::test_approach[torch-fp16]")
    assert not ab.runnable("benchmarks/test_approaches.py::test_approach[torch-multi_profile-two_profiles]")
    assert ab.runnable("benchmarks/test_approaches.py::test_approach[tensorrt-multi_profile-two_profiles]")
    assert ab.runnable("benchmarks/test_approaches.py::test_sweep[torch-uint8_input-b8]")
    assert not ab.runnable("benchmarks/test_approaches.py::test_sweep[torch-none]")


def test_processes_alternate_abba():
    assert [side for pair in range(4) for side in ab.side_order(pair)] == list("ABBAABBA")


def test_the_command_of_a_process_keeps_what_the_user_gave(tmp_path):
    plan = ab.Plan(
        ("benchmarks/test_approaches.py::test_approach[torch-fp16]",),
        60,
        3,
        5,
        ("--rounds", "7"),
        tmp_path / "cache",
        tmp_path / "out",
        {},
    )
    command = ab.process_command(Checkout(tmp_path / "a", "0" * 40, "A"), plan.tests, tmp_path / "x.json", plan)
    assert command[:4] == [sys.executable, "-m", "pytest", plan.tests[0]]
    assert not any(a.startswith("--rounds=") for a in command) and command[-2:] == ["--rounds", "7"]
    assert "--warmup-rounds=3" in command and f"--rootdir={tmp_path / 'a'}" in command
    assert f"--engine-cache-dir={tmp_path / 'cache' / 'engines'}" in command
    assert f"--benchmark-json={tmp_path / 'x.json'}" in command


def record_of(shard, rows=(("test_approach[torch-fp16]", "wall", "ok"),), base="a" * 40, head="b" * 40):
    return {
        "base": base,
        "head": head,
        "shard": list(shard),
        "tests": [],
        "pairs": 3,
        "pair_seconds": [1.0],
        "stopped_by": "every metric decided",
        "machine": {},
        "rows": [
            {
                "test": t,
                "metric": m,
                "verdict": v,
                "change": 0.01,
                "ci": [-0.01, 0.02],
                "p": 0.5,
                "threshold": 0.05,
                "a": [1.0, 1.0, 1.01],
                "b": [1.01, 1.02, 1.0],
            }
            for t, m, v in rows
        ],
    }


def write(path, record):
    path.write_text(json.dumps(record))
    return path


def test_shards_merge_into_one_verdict(tmp_path, capsys):
    one = write(tmp_path / "1.json", record_of((1, 2)))
    two = write(tmp_path / "2.json", record_of((2, 2), rows=[("test_approach[torch-overlap]", "wall", "REGRESSION")]))
    assert trtbench("ab", "--merge", one, two, "--out", tmp_path / "m") == 1
    out = capsys.readouterr().out
    assert out.startswith("2 shard(s), 2 metric(s)") and "1 regression(s): test_approach[torch-overlap] wall" in out
    assert "| test_approach[torch-fp16] | wall |" in (tmp_path / "m" / "ab.md").read_text()


@pytest.mark.parametrize(
    "make,message",
    [
        (
            lambda d: [write(d / "1.json", record_of((1, 3))), write(d / "3.json", record_of((3, 3)))],
            "shard(s) 2/3 missing: a missing shard is no pass",
        ),
        (
            lambda d: [
                write(d / "1.json", record_of((1, 2))),
                write(d / "2.json", {"shard": [2, 2], "refused": "why"}),
            ],
            "shard [2, 2] could not decide: why",
        ),
        (
            lambda d: [write(d / "1.json", record_of((1, 2))), write(d / "2.json", record_of((2, 2), head="c" * 40))],
            "shards compared different commits",
        ),
        (
            lambda d: [write(d / "1.json", record_of((1, 2))), write(d / "2.json", record_of((1, 2)))],
            "shards of different splits or given twice",
        ),
        (lambda d: [write(d / "x.json", {"benchmarks": []})], "not the summary of an A/B shard"),
        (lambda d: [d / "none.json"], "no such file"),
    ],
)
def test_a_missing_failed_or_foreign_shard_is_refused(tmp_path, capsys, make, message):
    assert trtbench("ab", "--merge", *make(tmp_path)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_shard_option_and_exit_statuses():
    assert ab.parse_shard("2/4") == (2, 4)
    for bad in ("0/2", "3/2", "x", "1/0"):
        with pytest.raises(Unusable, match="give I/N"):
            ab.parse_shard(bad)
    rows = ab.rows_of(record_of((1, 1), rows=[("t", "wall", "ok"), ("t", "compute", "can't tell")]))
    assert ab.exit_status(rows) == 3 and ab.exit_status(rows[:1]) == 0
    assert ab.exit_status(ab.rows_of(record_of((1, 1), rows=[("t", "wall", "REGRESSION")]))) == 1
    assert ab.format_rows(rows).splitlines()[0].split() == [
        "test",
        "metric",
        "A",
        "ms",
        "B",
        "ms",
        "change",
        "interval",
        "p",
        "threshold",
        "processes",
        "verdict",
    ]


def test_the_picture_shows_every_test_and_metric(tmp_path):
    rows = ab.rows_of(
        record_of((1, 1), rows=[("a", "wall", "ok"), ("a", "compute", "REGRESSION"), ("b", "wall", "can't tell")])
    )
    ab.render_picture(rows, tmp_path / "ab.png", "title")
    assert (tmp_path / "ab.png").read_bytes().startswith(b"\x89PNG")


def test_bisect_halves_the_range_and_stops_where_it_cannot_tell():
    commits = [f"c{i}" for i in range(8)]
    asked = []

    def slower_from(first):
        def slower(c):
            asked.append(c)
            return commits.index(c) >= first

        return slower

    for first in range(8):
        asked.clear()
        assert first_slow(commits, slower_from(first)) == f"c{first}" and len(asked) <= 3
    assert first_slow(commits, lambda c: None) == commits  # the first step cannot tell: all of it is left
    assert first_slow(["only"], lambda c: True) == "only"


def test_a_bisect_step_is_slow_only_past_half_the_slowdown_found():
    """A large slowdown between good and bad: a step without it, however noisy its processes,
    is not taken for a share of it (the step that once stopped a bisect as can't tell)."""
    settings = Settings.load()
    small = step_settings(settings, 0.015)  # half of it is under what counts: nothing changes
    assert small.ab == settings.ab
    large = step_settings(settings, 10.577)
    half = np.sqrt(11.577) - 1
    for metric, table in settings.ab.items():
        assert large.ab[metric] == {k: pytest.approx(max(v, half)) for k, v in table.items()}
    between = step_settings(settings, 0.21)  # half is 10%: tables' larger entries stay as they are
    assert between.ab_threshold("test_approach[torch-baseline]", "wall") == settings.ab["wall"]["baseline"]
    assert between.ab_threshold("test_approach[torch-fp16]", "wall") == pytest.approx(0.1)
    clean = [1.0, 1.3, 0.9]  # a step without the slowdown, on a busy machine
    noisy = [1.2, 1.6, 0.95]
    assert decide_ab(clean, noisy, 0.5, 0.2).verdict == "can't tell"  # against the smallest change alone
    assert decide_ab(clean, noisy, half, 0.2).verdict == "ok"
    slow = [11.0, 12.5, 11.8]
    assert decide_ab(clean, slow, half, 0.2).verdict == "REGRESSION"


# ---------------------------------------------------------------- refusals in one line


@pytest.fixture(scope="module")
def suite_repo(tmp_path_factory):
    """A git repository of this suite (its sources and the CPU doubles), three commits: the
    suite, a second commit touching nothing measured, and a third that plants a 300 ms host
    busy-wait per batch in fp16 (plant.txt, read by tests/plant.py)."""
    repo = tmp_path_factory.mktemp("suite")
    for part in ("trtbench", "fixtures", "benchmarks"):
        shutil.copytree(ROOT / part, repo / part, ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "tests").mkdir()
    for name in ("__init__.py", "fake_cuda.py", "cpu_suite.py", "plant.py"):
        shutil.copy(ROOT / "tests" / name, repo / "tests" / name)
    for name in ("conftest.py", "pytest.ini", "regression.toml"):
        shutil.copy(ROOT / name, repo / name)
    # A CPU shared with other work scatters the processes far more than a GPU machine's: the
    # flow is what these tests prove, with the significance level and thresholds of a smoke test.
    text = (ROOT / "regression.toml").read_text()
    (repo / "cpu-ab.toml").write_text(
        text[: text.index("[ab]")] + "[ab]\nalpha = 0.2\n\n[ab.wall]\ndefault = 0.5\n\n[ab.compute]\ndefault = 0.5\n"
    )

    def git(*args):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("-c", "user.name=t", "-c", "user.email=t@t", "add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "the suite")
    (repo / "NOTES.txt").write_text("nothing measured changes\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "notes")
    (repo / "plant.txt").write_text("fp16:host:300\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "fp16 gets slower")
    return repo


CPU_SUITE = [
    "--env",
    "PYTEST_PLUGINS=tests.cpu_suite,tests.plant",
    "-k",
    "test_approach and fp16",
    "--thresholds",
    "cpu-ab.toml",
]
SMALL_GATE = ["--min-pairs", "2", "--max-pairs", "3", "--budget", "10"]  # few pairs: the plant is large
CPU_ARGS = ["--", "--backend", "torch", "--batch-size", "2", "--batches", "2", "--rounds", "5", "--warmup-rounds", "1"]


def command(repo, *args):
    done = subprocess.run(
        [sys.executable, "-m", "trtbench", *map(str, args)],
        cwd=repo,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{repo}:{ROOT}", "HOME": str(repo)},
        timeout=900,
    )
    return done


@pytest.mark.parametrize(
    "args,message",
    [
        (["--base", "nosuchrev"], "--base nosuchrev: not a commit of this repository"),
        (["--base", "HEAD", "--head", "HEAD~9"], "--head HEAD~9: not a commit of this repository"),
        (["--budget", "0"], "--budget 0: give minutes, more than 0"),
        (["--min-pairs", "1"], "--min-pairs 1, --max-pairs 20: need 2 <= min <= max"),
        (["--shard", "3/2", "--base", "HEAD"], "--shard 3/2: give I/N with 1 <= I <= N"),
        (["--env", "NOVALUE", "--base", "HEAD"], "--env 'NOVALUE': give KEY=VALUE"),
    ],
)
def test_bad_gate_input_is_one_line_and_exit_2(suite_repo, args, message):
    done = command(suite_repo, "ab", *args)
    assert done.returncode == 2 and message in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr


def test_a_commit_without_the_suite_and_a_dirty_head_are_refused(suite_repo, tmp_path):
    other = tmp_path / "other"
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    (other / "x.txt").write_text("x")
    subprocess.run(["git", "-C", str(other), "add", "."], check=True)
    subprocess.run(
        ["git", "-C", str(other), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"], check=True
    )
    done = command(other, "ab", "--base", "HEAD")
    assert (
        done.returncode == 2
        and "--base HEAD: holds no benchmarks/test_approaches.py: not a commit of this suite" in done.stderr
    )
    done = command(tmp_path, "ab")
    assert done.returncode == 2 and "not inside a git repository" in done.stderr
    notes = suite_repo / "NOTES.txt"
    notes.write_text("changed, not committed\n")
    try:
        done = command(suite_repo, "ab", "--base", "HEAD~1", "--head", "HEAD")
        assert (
            done.returncode == 2
            and "the working tree has uncommitted changes that HEAD lacks (NOTES.txt)" in done.stderr
        )
    finally:
        subprocess.run(["git", "-C", str(suite_repo), "checkout", "NOTES.txt"], check=True)


# ---------------------------------------------------------------- the whole flow, on the CPU


@pytest.mark.slow
def test_ab_finds_the_planted_host_slowdown_and_leaves_readable_runs(suite_repo, tmp_path):
    out = tmp_path / "gate"
    done = command(
        suite_repo,
        "ab",
        "--base",
        "HEAD~1",
        "--head",
        "HEAD",
        *SMALL_GATE,
        "--out",
        out,
        *CPU_SUITE,
        *CPU_ARGS,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 regression(s): test_approach[torch-fp16] wall slower by +" in done.stdout
    summary = json.loads((out / "ab.json").read_text())
    verdicts = {(r["test"], r["metric"]): r["verdict"] for r in summary["rows"]}
    assert verdicts["test_approach[torch-fp16]", "wall"] == "REGRESSION"
    assert verdicts["test_approach[torch-fp16]", "compute"] != "REGRESSION"  # the wait is on the host
    assert summary["pairs"] >= 2 and len(summary["rows"][0]["a"]) == summary["pairs"]
    assert (out / "ab.png").read_bytes().startswith(b"\x89PNG") and "| test_approach[torch-fp16] | wall |" in (
        out / "ab.md"
    ).read_text()
    assert "planted slowdowns (tests/plant.py): {'fp16': {'host': 300.0}}" in (out / "B" / "0001_B.log").read_text()
    assert "planted slowdowns (tests/plant.py): none" in (out / "A" / "0001_A.log").read_text()
    first_a = SavedRun.load(out / "A" / "0001_A.json")  # each process's saved run, as compare and report read it
    assert "test_approach[torch-fp16]" in first_a.tests
    assert not list((suite_repo / ".cache" / "ab-worktrees").glob("*")), "worktrees are removed at the end"


@pytest.mark.slow
def test_bisect_names_the_commit_that_planted_the_slowdown(suite_repo, tmp_path):
    done = command(
        suite_repo,
        "bisect",
        "--good",
        "HEAD~2",
        "--bad",
        "HEAD",
        *SMALL_GATE,
        "--out",
        tmp_path / "b",
        *CPU_SUITE,
        *CPU_ARGS,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    head = subprocess.run(["git", "-C", str(suite_repo), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert f"first slow commit: {head.stdout.strip()} fp16 gets slower" in done.stdout
    assert done.stdout.count("step ") >= 2  # good vs bad first, then the commit between them


def test_two_folders_are_compared_without_git_and_one_folder_alone_is_refused(suite_repo, tmp_path):
    done = command(suite_repo, "ab", "--base", suite_repo, "--head", "HEAD")
    assert done.returncode == 2 and "give two commits, or two folders" in done.stderr
    done = command(suite_repo, "ab", "--base", tmp_path, "--head", suite_repo)
    assert done.returncode == 2 and "a folder without benchmarks/test_approaches.py" in done.stderr
    done = command(
        tmp_path, "ab", "--base", suite_repo, "--head", suite_repo, "-k", "no_such_test", *CPU_SUITE[:2], *CPU_ARGS
    )
    assert done.returncode == 2 and "selects no benchmark both versions have" in done.stderr, done.stderr


def test_bisect_needs_one_test_and_a_good_before_bad(suite_repo):
    done = command(suite_repo, "bisect", "--good", "HEAD", "--bad", "HEAD~2", "-k", "fp16")
    assert done.returncode == 2 and "is not an ancestor of --bad" in done.stderr
    done = command(suite_repo, "bisect", "--good", "HEAD~1", "--bad", "HEAD")
    assert done.returncode == 2 and "-k: name the test that regressed" in done.stderr


def test_a_run_of_the_suite_reads_as_a_saved_run_of_one_side(tmp_path):
    """What --merge and compare share: the gate's processes leave ordinary saved runs."""
    path = saved_run(tmp_path / "0001_A.json")
    assert SavedRun.load(path).tests
    assert Checkout(tmp_path, None, "B").describe() == f"folder {tmp_path}"


# ---------------------------------------------------------------- in process, piece by piece
# (each pins a behaviour a mutation test found unchecked: see mutation/run.py)

AB_SETTINGS = (
    "[thresholds.wall]\ndefault = 0.10\n[thresholds.compute]\ndefault = 0.05\n"
    "[ab]\nalpha = 0.02\nok_alpha = 0.2\n[ab.wall]\ndefault = 0.05\nfp16 = 0.08\n[ab.compute]\ndefault = 0.01\n"
)
FP16, MULTI = "test_approach[torch-fp16]", "test_approach[torch-multi_context]"


def ab_settings(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(AB_SETTINGS)
    return Settings.load(path)


def process_run(side, i, tests):
    """One process's saved run, in memory: ``tests`` maps a test name to its metric -> samples."""
    from tests.helpers import record

    machine = {"gpu_name": "NVIDIA H200", "tensorrt": "10.13", "model": "resnet18", "cuda": {"x": 1}, "n": i}
    return SavedRun(Path(f"{side}{i}.json"), machine, {}, "", {t: record(t, 8, s) for t, s in tests.items()})


def gate_with(tmp_path, runs, metrics=("wall", "compute"), base_sha="a" * 40):
    plan = ab.Plan(
        tuple(f"benchmarks/test_approaches.py::{t}" for t in (FP16, MULTI)),
        600,
        2,
        6,
        (),
        tmp_path / "cache",
        tmp_path / "out" / "gate",
        {},
        metrics,
    )
    gate = ab.Gate(Checkout(tmp_path / "a", base_sha, "A"), Checkout(tmp_path / "b", "b" * 40, "B"), plan)
    gate.runs = runs
    gate.pair_seconds = [90.0, 96.0]
    gate.stopped_by = "every metric decided"
    return gate


def measured_sides(b_first_enqueue=0.1, b_second_busy=True):
    """Three processes a side. fp16: wall 10% slower in B, compute the same; multi_context:
    per-batch GPU spans 20% slower in B but its GPU busy time the same (what is judged)."""
    a_wall, b_wall = [5.0, 5.05, 4.95], [5.5, 5.52, 5.47]
    a_gpu, b_gpu = [2.0, 2.01, 1.99], [2.0, 2.02, 1.99]
    runs = {"A": [], "B": []}
    for side, wall, gpu in (("A", a_wall, a_gpu), ("B", b_wall, b_gpu)):
        for i in range(3):
            enqueue = b_first_enqueue if side == "B" and i == 0 else 0.1
            multi = {"wall": [3.0 + i / 100] * 3, "compute": [gpu[i] * (1.2 if side == "B" else 1)] * 3}
            if side == "A" or i != 1 or b_second_busy:
                multi["gpu_busy"] = [gpu[i] / 2, gpu[i] / 2 + 0.001, gpu[i] / 2 - 0.001]
            fp16 = {"wall": [wall[i] - 0.01, wall[i], wall[i] + 0.3], "compute": [gpu[i]] * 3, "enqueue": [enqueue] * 3}
            runs[side].append(process_run(side, i, {FP16: fp16, MULTI: multi}))
    return runs, a_wall, b_wall, a_gpu, b_gpu


def test_the_gate_decides_each_metric_on_the_per_process_medians(tmp_path):
    settings = ab_settings(tmp_path)
    runs, a_wall, b_wall, a_gpu, b_gpu = measured_sides()
    rows = ab.decide(gate_with(tmp_path, runs), settings)
    busy = [g / 2 for g in a_gpu], [g / 2 for g in b_gpu]
    assert rows == [
        ab.Row(FP16, "wall", decide_ab(a_wall, b_wall, 0.08, 0.02, 0.2)),
        ab.Row(FP16, "compute", decide_ab(a_gpu, b_gpu, 0.01, 0.02, 0.2)),
        ab.Row(MULTI, "wall", decide_ab([3.0, 3.01, 3.02], [3.0, 3.01, 3.02], 0.05, 0.02, 0.2)),
        ab.Row(MULTI, "compute", decide_ab(*busy, 0.01, 0.02, 0.2)),
    ]
    assert [r.verdict for r in rows] == ["REGRESSION", "ok", "ok", "ok"]
    # the settings' levels are the ones used: at the defaults the same values decide otherwise
    assert decide_ab(a_gpu, b_gpu, 0.01, 0.01, 0.05) != rows[1].decision
    assert decide_ab(a_gpu, b_gpu, 0.01, 0.02).verdict != rows[1].verdict
    only_wall = ab.decide(gate_with(tmp_path, runs, metrics=("wall",)), settings)
    assert [(r.test, r.metric) for r in only_wall] == [(FP16, "wall"), (MULTI, "wall")]
    assert ab.decide(gate_with(tmp_path, {"A": [], "B": []}), settings) == []


def test_a_metric_one_process_lacks_is_not_judged_and_enqueue_bound_gpu_time_takes_the_wall_threshold(tmp_path):
    settings = ab_settings(tmp_path)
    runs, *_ = measured_sides(b_second_busy=False)
    rows = ab.decide(gate_with(tmp_path, runs), settings)
    assert [(r.test, r.metric) for r in rows] == [(FP16, "wall"), (FP16, "compute"), (MULTI, "wall")]
    assert rows[1].decision.threshold == 0.01
    bound_first, *_ = measured_sides(b_first_enqueue=1.9)  # B's first process waits on its launches
    assert ab.decide(gate_with(tmp_path, bound_first), settings)[1].decision.threshold == 0.08  # fp16's wall
    bound_later = measured_sides()[0]
    bound_later["A"][1] = bound_later["B"][1] = bound_first["B"][0]  # enqueue-bound, but not a side's first
    assert ab.decide(gate_with(tmp_path, bound_later), settings)[1].decision.threshold == 0.01
    no_wall, *_ = measured_sides()
    no_wall["B"][2] = process_run("B", 2, {FP16: {"compute": [2.0] * 3}, MULTI: {"wall": [3.0] * 3}})
    assert [(r.test, r.metric) for r in ab.decide(gate_with(tmp_path, no_wall), settings)] == [
        (FP16, "compute"),
        (MULTI, "wall"),
    ]


def decided_gate(tmp_path, **kwargs):
    settings = ab_settings(tmp_path)
    gate = gate_with(tmp_path, measured_sides()[0], **kwargs)
    gate.rows = ab.decide(gate, settings)
    return gate


def test_the_summary_record_holds_what_the_merge_needs_and_reads_back(tmp_path):
    gate = decided_gate(tmp_path)
    record = ab.summary_record(gate, (2, 3))
    row = gate.rows[0].decision
    rows = record.pop("rows")
    assert record == {
        "base": "a" * 40,
        "head": "b" * 40,
        "shard": [2, 3],
        "tests": list(gate.plan.tests),
        "selected": list(gate.plan.tests),
        "pairs": 3,
        "pair_seconds": [90.0, 96.0],
        "stopped_by": "every metric decided",
        "machine": {"gpu_name": "NVIDIA H200", "tensorrt": "10.13", "model": "resnet18", "n": 0},
    }
    assert len(rows) == len(gate.rows) and rows[0] == {
        "test": FP16,
        "metric": "wall",
        "verdict": "REGRESSION",
        "change": row.change,
        "ci": list(row.ci),
        "p": row.p_value,
        "threshold": row.threshold,
        "a": [5.0, 5.05, 4.95],
        "b": [5.5, 5.52, 5.47],
    }
    record["rows"] = rows
    assert ab.rows_of(json.loads(json.dumps(record))) == gate.rows
    unsharded = ab.summary_record(gate_with(tmp_path, {"A": [], "B": []}, base_sha=None), None)
    assert (unsharded["shard"], unsharded["base"], unsharded["machine"], unsharded["pairs"]) == (
        None,
        f"folder {tmp_path / 'a'}",
        {},
        0,
    )


def test_the_gate_writes_its_record_summary_and_picture(tmp_path, monkeypatch):
    drawn = []

    def draw(rows, path, title):
        drawn.append((list(rows), path, title))
        path.write_bytes(b"png")

    monkeypatch.setattr(ab, "render_picture", draw)
    gate = decided_gate(tmp_path)
    out = gate.plan.out
    assert ab.write_outputs(gate, (1, 2)) == [out / "ab.json", out / "ab.md", out / "ab.png"]
    assert drawn == [(gate.rows, out / "ab.png", f"A {'a' * 12} vs B {'b' * 12}: 3 pairs")]
    assert (out / "ab.json").read_text() == json.dumps(ab.summary_record(gate, (1, 2)), indent=1)  # readable
    text = (out / "ab.md").read_text()
    assert text == ab.markdown(gate, gate.rows, "ab.png")
    assert text.splitlines() == [
        f"## A/B: {'a' * 12} (A) vs {'b' * 12} (B)",
        "",
        "3 pairs of processes, alternating A B B A ...; every metric decided; 3.1 min.",
        "",
        *ab.format_rows(gate.rows, markdown=True).splitlines(),
        "",
        ab.verdict_line(gate.rows),
        "",
        "![per-process values](ab.png)",
    ]
    gate.rows = []
    drawn.clear()
    assert ab.write_outputs(gate, None) == [out / "ab.json", out / "ab.md"] and drawn == []
    assert "![" not in (out / "ab.md").read_text()
    assert json.loads((out / "ab.json").read_text())["rows"] == []


def test_a_refused_shard_leaves_a_record_saying_why(tmp_path):
    out = tmp_path / "deep" / "out"
    ab.write_refusal(out, (2, 4), "--budget 1 min is too small")
    assert json.loads((out / "ab.json").read_text()) == {"shard": [2, 4], "refused": "--budget 1 min is too small"}
    ab.write_refusal(out, None, "why")
    assert json.loads((out / "ab.json").read_text()) == {"shard": None, "refused": "why"}


def test_a_process_finds_its_own_checkout_first_with_its_sides_variables(tmp_path, monkeypatch):
    checkout = Checkout(tmp_path / "a", None, "A")
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    monkeypatch.setenv("KEPT", "1")
    env = ab.process_env(checkout, {"PYTEST_PLUGINS": "tests.plant", "KEPT": "2"})
    assert env["PYTHONPATH"] == f"{tmp_path / 'a'}{os.pathsep}/elsewhere"
    assert env["PYTEST_PLUGINS"] == "tests.plant" and env["KEPT"] == "2" and env["PATH"] == os.environ["PATH"]
    monkeypatch.delenv("PYTHONPATH")
    assert ab.process_env(checkout, {})["PYTHONPATH"] == str(tmp_path / "a")
    assert "PYTEST_PLUGINS" not in ab.process_env(checkout, {})


def test_the_command_of_a_process_in_full_and_options_given_with_their_values(tmp_path):
    given = ("--warmup-rounds=1", "--engine-cache-dir=/e", "--reference-cache-dir=/r", "-k", "fp16")
    plan = ab.Plan(("t.py::test_a", "t.py::test_b"), 60, 2, 4, given, tmp_path / "c", tmp_path / "o", {})
    root = tmp_path / "a"
    command = ab.process_command(Checkout(root, None, "A"), plan.tests, tmp_path / "x.json", plan)
    assert command == [
        sys.executable,
        "-m",
        "pytest",
        "t.py::test_a",
        "t.py::test_b",
        "-p",
        "no:cacheprovider",
        "-rs",
        f"--rootdir={root}",
        f"--benchmark-json={tmp_path / 'x.json'}",
        "--rounds=15",
        *given,
    ]
    plan = ab.Plan(plan.tests, 60, 2, 4, ("--rounds=3",), tmp_path / "c", tmp_path / "o", {})
    assert ab.process_command(Checkout(root, None, "A"), plan.tests, tmp_path / "x.json", plan)[10:] == [
        "--warmup-rounds=3",
        f"--engine-cache-dir={tmp_path / 'c' / 'engines'}",
        f"--reference-cache-dir={tmp_path / 'c' / 'reference'}",
        "--rounds=3",
    ]


def test_the_line_that_says_why_a_process_failed():
    assert ab._last_line("collected 3 items\nE   ValueError: bad\nmore\n=== 1 failed ===\nlast words\n") == (
        "E   ValueError: bad"
    )
    assert ab._last_line("ERROR one\nFAILED t.py::x - two\n") == "FAILED t.py::x - two"
    assert ab._last_line("  ImportError in a plugin  \nok\n") == "ImportError in a plugin"
    assert ab._last_line("first\n\n  second  \n===========\n---- _ ----\n") == "second"
    assert ab._last_line("") == ab._last_line("=== ---\n\n") == "(no output)"
    assert ab._last_line("x" * 500) == "x" * 400
    assert ab._last_line("Errors are words too\nEnd\n") == "Errors are words too"
    assert ab._last_line("ERROR collecting t.py\nlater\n") == "ERROR collecting t.py"
    assert ab._last_line("E   assert 1 == 2\nlater\n") == "E   assert 1 == 2"
    assert ab._last_line("words\n=- _\n") == "words"  # a rule of every separator character
    assert ab._last_line("words\nX\n") == "X"


def test_a_node_ids_test_name_and_an_unknown_approach_left_to_the_process():
    assert ab._name("benchmarks/test_approaches.py::test_approach[torch-fp16]") == "test_approach[torch-fp16]"
    assert ab._name("benchmarks/x.py::TestClass::test_y") == "test_y" and ab._name("plain") == "plain"
    assert ab.runnable("benchmarks/test_approaches.py::test_approach[torch-not_an_approach]")


def test_table_cells_of_a_decided_and_an_undecided_row():
    from trtbench.stats import ABDecision

    decided = ab.Row("t", "wall", ABDecision("ok", 0.012, (-0.01, 0.034), 0.25, 0.05, (2.0, 2.1, 1.9), (2.0, 2.05)))
    assert ab.cells(decided) == ["t", "wall", "2.000", "2.025", "+1.2%", "-1.0%..+3.4%", "0.25", "5.0%", "3+2", "ok"]
    nan = float("nan")
    few = ab.Row("t", "compute", ABDecision("can't tell", 0.5, (nan, nan), nan, 0.01, (2.0,), (3.0,)))
    assert ab.cells(few)[5:7] == ["-", "-"] and ab.cells(few)[-2:] == ["1+1", "can't tell"]


def test_the_verdict_line_names_every_regression_else_every_undecided_metric():
    from trtbench.stats import ABDecision

    def row(test, verdict, ci=(0.01, 0.2)):
        return ab.Row(test, "wall", ABDecision(verdict, 0.1, ci, 0.001, 0.05, (1.0, 1.0), (1.1, 1.1)))

    assert ab.verdict_line([row("a", "REGRESSION"), row("b", "ok"), row("c", "REGRESSION")]) == (
        "2 regression(s): a wall slower by +10.0% (p=0.001), past 5.0%; c wall slower by +10.0% (p=0.001), past 5.0%"
    )
    assert ab.verdict_line([row("a", "can't tell"), row("b", "ok"), row("c", "can't tell")]) == (
        "can't tell 2 metric(s) within the budget: a wall: the interval +1.0%..+20.0% reaches past 5.0%: "
        "more processes; c wall: the interval +1.0%..+20.0% reaches past 5.0%: more processes"
    )
    assert ab.verdict_line([row("a", "ok"), row("b", "faster")]) == "no regression: every metric decided"


def test_merge_refusals_name_what_is_wrong_and_rows_follow_the_shard_numbers(tmp_path):
    with pytest.raises(Unusable) as info:
        ab.merge([write(tmp_path / "n.json", {**record_of((1, 1)), "shard": None})])
    assert str(info.value) == f"{tmp_path / 'n.json'}: not a shard (made without --shard)"
    with pytest.raises(Unusable) as info:
        ab.merge([])
    assert str(info.value) == "--merge: no shard summaries given"
    with pytest.raises(Unusable) as info:
        ab.merge([write(tmp_path / "2.json", record_of((2, 2)))])
    assert str(info.value) == "--merge: shard(s) 1/2 missing: a missing shard is no pass"
    with pytest.raises(Unusable) as info:
        ab.merge([write(tmp_path / "1.json", record_of((1, 4))), write(tmp_path / "4.json", record_of((4, 4)))])
    assert str(info.value) == "--merge: shard(s) 2/4, 3/4 missing: a missing shard is no pass"
    with pytest.raises(Unusable) as info:
        ab.merge([write(tmp_path / "1.json", record_of((1, 2))), write(tmp_path / "2.json", record_of((2, 3)))])
    assert str(info.value).startswith("--merge: shards of different splits or given twice: [[1, 2], [2, 3]]")
    two = write(tmp_path / "2.json", record_of((2, 2), rows=[("second", "wall", "ok")], base="c" * 40))
    with pytest.raises(Unusable) as info:
        ab.merge([write(tmp_path / "1.json", record_of((1, 2), rows=[("first", "wall", "ok")])), two])
    assert str(info.value) == "--merge: shards compared different commits"
    two = write(tmp_path / "2.json", record_of((2, 2), rows=[("second", "wall", "ok")]))
    one = write(tmp_path / "1.json", record_of((1, 2), rows=[("first", "wall", "ok")]))
    records, rows = ab.merge([two, one])
    assert [r["shard"] for r in records] == [[2, 2], [1, 2]] and [r.test for r in rows] == ["first", "second"]


def test_every_shard_of_a_split_is_allowed():
    assert [ab.parse_shard(s) for s in ("1/1", "1/3", "3/3")] == [(1, 1), (1, 3), (3, 3)]


# ---------------------------------------------------------------- the loop of pairs, with processes faked


class FakeClock:
    """time.monotonic for run_gate: each process takes ``seconds``."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def looping_gate(tmp_path, monkeypatch, sides, seconds=30.0, budget=600, min_pairs=2, max_pairs=6):
    """A gate whose processes return the runs of ``sides`` in turn (the last one again when they
    run out), each taking ``seconds`` on a fake clock; the order they ran in is logged."""
    clock, ran = FakeClock(), []

    def fake_process(checkout, number, plan, timeout_s):
        ran.append((checkout.label, number))
        clock.now += seconds
        runs = sides[checkout.label]
        return runs[min(number - 1, len(runs) - 1)]

    monkeypatch.setattr(ab, "run_process", fake_process)
    monkeypatch.setattr(ab.time, "monotonic", clock)
    gate = gate_with(tmp_path, {"A": [], "B": []})
    gate.plan = dataclasses.replace(gate.plan, budget_s=budget, min_pairs=min_pairs, max_pairs=max_pairs)
    gate.pair_seconds, gate.stopped_by = [], ""
    return gate, ran


def test_processes_run_in_abba_order_and_stop_when_every_metric_is_decided(tmp_path, monkeypatch):
    sides, *_ = measured_sides()
    gate, ran = looping_gate(tmp_path, monkeypatch, sides, min_pairs=3)
    said = []
    ab.run_gate(gate, ab_settings(tmp_path), say=said.append)
    assert ran == [("A", 1), ("B", 1), ("B", 2), ("A", 2), ("A", 3), ("B", 3)]
    assert said[:2] == ["pair 1 (A B): 60 s; 4 of 4 metrics undecided", "pair 2 (B A): 60 s; 0 of 4 metrics undecided"]
    assert gate.stopped_by == "every metric decided" and gate.pairs == 3


def test_pairs_stop_at_max_pairs_or_before_the_budget_runs_out(tmp_path, monkeypatch):
    def scattered(side, i):  # processes 20% apart, alternately: never decided in a few pairs
        wall = [5.0 * (1.1 if (i + (side == "B")) % 2 else 0.9)] * 3
        return process_run(side, i, {FP16: {"wall": wall}, MULTI: {"wall": wall}})

    noisy = {side: [scattered(side, i) for i in range(8)] for side in "AB"}
    gate, ran = looping_gate(tmp_path, monkeypatch, noisy, max_pairs=4)
    gate.plan = dataclasses.replace(gate.plan, metrics=("wall",))
    ab.run_gate(gate, ab_settings(tmp_path), say=lambda line: None)
    assert gate.pairs == 4 and gate.stopped_by == "--max-pairs 4 reached" and len(ran) == 8
    gate, ran = looping_gate(tmp_path, monkeypatch, noisy, seconds=30.0, budget=190)
    gate.plan = dataclasses.replace(gate.plan, metrics=("wall",))
    ab.run_gate(gate, ab_settings(tmp_path), say=lambda line: None)
    assert gate.pairs == 3 and gate.stopped_by == "--budget 3.16667 min reached"  # a 4th would end at 240 s
    assert [r.verdict for r in gate.rows] == ["can't tell", "can't tell"]


def test_a_budget_too_small_for_the_minimum_is_refused_after_the_first_pair(tmp_path, monkeypatch):
    sides, *_ = measured_sides()
    gate, ran = looping_gate(tmp_path, monkeypatch, sides, seconds=50.0, budget=250, min_pairs=3)
    with pytest.raises(Unusable) as info:
        ab.run_gate(gate, ab_settings(tmp_path), say=lambda line: None)
    assert str(info.value) == (
        "--budget 4.16667 min is too small to decide: a pair of processes took 100 s and a decision needs at "
        "least 3 pairs; give --budget 6 or more, or select fewer tests"
    )
    assert ran == [("A", 1), ("B", 1)]
    gate, ran = looping_gate(tmp_path, monkeypatch, sides, seconds=50.0, budget=300, min_pairs=3)
    ab.run_gate(gate, ab_settings(tmp_path), say=lambda line: None)  # 3 pairs of 100 s fit 300 s exactly
    assert gate.pairs == 3 and len(ran) == 6


def test_a_gate_that_judged_nothing_is_refused(tmp_path, monkeypatch):
    bare = {side: [process_run(side, 0, {FP16: {"upload": [1.0] * 3}, MULTI: {"upload": [1.0] * 3}})] for side in "AB"}
    gate, _ = looping_gate(tmp_path, monkeypatch, bare)
    with pytest.raises(Unusable) as info:
        ab.run_gate(gate, ab_settings(tmp_path), say=lambda line: None)
    assert str(info.value) == (
        "no gated metric (wall, GPU compute) of the selected tests was recorded by both versions: nothing to judge"
    )


@pytest.mark.parametrize(
    "record,message",
    [
        ({"shard": "x"}, "shard 'x' is not [I, N] with 1 <= I <= N"),
        ({"shard": [0, 0]}, "shard [0, 0] is not [I, N]"),
        ({"shard": [1, 1], "base": "a", "head": "b"}, "its rows are not those of an A/B shard"),
        ({"shard": [True, 1]}, "shard [True, 1] is not [I, N]"),
        ({"shard": [2, 1]}, "shard [2, 1] is not [I, N]"),
        (
            dict(record_of((1, 1)), rows=[{"test": "t"}]),
            "its rows are not those of an A/B shard (each needs test, metric, verdict, change, ci, p, threshold, a, b)",
        ),
        (dict(record_of((2, 3)), rows=[]), "shard 2/3 judged nothing"),
        (dict(record_of((1, 1)), base=None), "names no base and head versions"),
    ],
)
def test_a_shard_record_that_is_not_one_is_refused_in_one_line(tmp_path, capsys, record, message):
    assert trtbench("ab", "--merge", write(tmp_path / "s.json", record), "--out", tmp_path / "m") == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_shards_of_different_selections_or_an_unwritable_out_are_refused(tmp_path, capsys):
    one = write(tmp_path / "1.json", dict(record_of((1, 2)), selected=["t1", "t2"]))
    two = write(tmp_path / "2.json", dict(record_of((2, 2)), selected=["t1", "t3"]))
    assert trtbench("ab", "--merge", one, two, "--out", tmp_path / "m") == 2
    assert capsys.readouterr().err == "error: --merge: shards of different selections of tests (-k): not one gate\n"
    blocker = write(tmp_path / "file", {})
    two = write(tmp_path / "2.json", dict(record_of((2, 2)), selected=["t1", "t2"]))
    assert trtbench("ab", "--merge", one, two, "--out", blocker) == 2
    assert capsys.readouterr().err.startswith(f"error: --out {blocker}: cannot write")


def test_a_process_that_skipped_everything_names_the_skip(tmp_path, monkeypatch):
    gate = gate_with(tmp_path, {"A": [], "B": []})

    def skipped(command, cwd, env, stdout, stderr, timeout):
        stdout.write("SKIPPED [2] benchmarks/test_approaches.py: no NVIDIA GPU or driver found\n")
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(ab.subprocess, "run", skipped)
    with pytest.raises(Unusable) as info:
        ab.run_process(gate.base, 1, gate.plan, timeout_s=60)
    assert "measured nothing of test_approach[torch-fp16], test_approach[torch-multi_context]" in str(info.value)
    assert "(SKIPPED [2] benchmarks/test_approaches.py: no NVIDIA GPU or driver found)" in str(info.value)


def faked_pytest(monkeypatch, output="", returncode=0, writes=None, timeout=False):
    """subprocess.run for run_process: prints ``output`` to the log and writes the saved run
    (``writes(path)``) where --benchmark-json says, or times out."""

    def fake(command, cwd, env, stdout, stderr, timeout):
        if timeout_now:
            raise subprocess.TimeoutExpired(command, timeout)
        stdout.write(output)
        if writes:
            writes(Path(next(a for a in command if a.startswith("--benchmark-json=")).split("=", 1)[1]))
        return subprocess.CompletedProcess(command, returncode)

    timeout_now = timeout
    monkeypatch.setattr(ab.subprocess, "run", fake)


def test_a_process_gives_its_saved_run_or_one_line_saying_why_not(tmp_path, monkeypatch):
    gate = gate_with(tmp_path, {"A": [], "B": []})
    both = lambda path: saved_run(path, {"fp16": 5.0, "multi_context": 3.0})  # noqa: E731
    faked_pytest(monkeypatch, writes=both)
    run = ab.run_process(gate.base, 2, gate.plan, timeout_s=60)
    assert set(run.tests) == {FP16, MULTI} and run.path == gate.plan.out / "A" / "0002_A.json"
    log = gate.plan.out / "B" / "0001_B.log"

    def refusal(**fake):
        faked_pytest(monkeypatch, **fake)
        with pytest.raises(Unusable) as info:
            ab.run_process(gate.head, 1, gate.plan, timeout_s=60)
        return str(info.value)

    assert refusal(output="collected 2 items\nE   RuntimeError: boom\n==== 1 failed ====\n", returncode=1) == (
        f"B process 1 ({'b' * 12}) failed (pytest exit 1): E   RuntimeError: boom; log: {log}"
    )
    assert refusal(timeout=True) == f"B process 1 ({'b' * 12}) ran past 60 s; log: {log}"
    assert refusal(writes=lambda path: path.write_text("{")).startswith(
        f"B process 1: {gate.plan.out / 'B' / '0001_B.json'}: not valid JSON"
    )
    only_fp16 = lambda path: saved_run(path, {"fp16": 5.0})  # noqa: E731
    assert refusal(writes=only_fp16) == (
        f"B process 1 ({'b' * 12}) measured nothing of test_approach[torch-multi_context]; log: {log}"
    )


def test_a_process_that_measured_few_of_many_tests_names_three_and_says_there_are_more(tmp_path, monkeypatch):
    gate = gate_with(tmp_path, {"A": [], "B": []})
    names = [f"test_approach[torch-{case}]" for case in ("baseline", "fp16", "overlap", "uint8_input", "cuda_graph")]
    gate.plan = dataclasses.replace(gate.plan, tests=tuple(f"benchmarks/test_approaches.py::{n}" for n in names))
    faked_pytest(monkeypatch, writes=lambda path: saved_run(path, {"cuda_graph": 3.0}))
    with pytest.raises(Unusable) as info:
        ab.run_process(gate.base, 1, gate.plan, timeout_s=60)
    assert str(info.value) == (
        f"A process 1 ({'a' * 12}) measured nothing of test_approach[torch-baseline], test_approach[torch-fp16], "
        f"test_approach[torch-overlap] ...; log: {gate.plan.out / 'A' / '0001_A.log'}"
    )
    three = [f"test_approach[torch-{case}]" for case in ("baseline", "fp16", "overlap", "cuda_graph")]
    gate.plan = dataclasses.replace(gate.plan, tests=tuple(f"benchmarks/test_approaches.py::{n}" for n in three))
    with pytest.raises(Unusable) as info:
        ab.run_process(gate.base, 1, gate.plan, timeout_s=60)
    assert "test_approach[torch-overlap]; log: " in str(info.value)  # exactly three: no "..."
