"""trtbench.trends and the trends command on histories built from real runs of the suite
(tests/trends_history.py: per-round samples of 5 A/A runs and 14 A/B runs on an H200)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from tests import trends_history as th
from tests.helpers import trtbench
from trtbench import trends
from trtbench.cli import EXIT_OK, EXIT_REFUSED

ROOT = Path(__file__).resolve().parents[1]
AT = 40  # 0-based index of the first run with a planted step
# tests whose run-to-run noise lets a step of that size show (README, "Trends": the detection table)
SEE_3_PERCENT_COMPUTE = (
    "fp16",
    "overlap",
    "async_postprocess",
    "cuda_graph",
    "cuda_graph-b1",
    "gpu_postprocess",
    "uint8_input",
)
SEE_10_PERCENT_WALL = ("pinned_memory", "overlap", "cuda_graph", "gpu_postprocess", "uint8_input")


def name(case: str) -> str:
    return f"test_approach[torch-{case}]"


@pytest.fixture(scope="module")
def aa() -> dict:
    return th.samples()


def judge(folder: Path, **options) -> trends.Trends:
    runs, left_out = trends.read_storage(folder)
    return trends.trends(runs, left_out, **options)


def main(*argv: str) -> int:
    return trtbench("trends", *argv)


class Page(HTMLParser):
    """What the tests look for in the page: charts, tables, rows, links and any external reference."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[str, int] = {}
        self.charts = 0
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self.external: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1
        found = dict(attrs)
        if tag == "div" and found.get("class") == "chart":
            self.charts += 1
        if found.get("id"):
            self.ids.append(str(found["id"]))
        if found.get("href"):
            self.hrefs.append(str(found["href"]))
        self.external += [f"{tag} {k}={v}" for k, v in attrs if v and ("//" in v or k == "src")]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


# ---------------------------------------------------------------- the statistics


def test_find_steps_on_a_clean_step_and_on_noise():
    rng = np.random.default_rng(3)
    noise = 1 + 0.004 * rng.standard_normal(60)
    stepped = 3.0 * noise * np.where(np.arange(60) >= 25, 1.03, 1.0)
    steps, found_noise = trends.find_steps(stepped)
    assert [s.at for s in steps] == [25]
    assert steps[0].ratio == pytest.approx(1.03, abs=0.003) and steps[0].p < 0.002
    assert steps[0].ci[0] < steps[0].ratio < steps[0].ci[1]
    assert found_noise == pytest.approx(0.004, rel=0.3)
    assert trends.find_steps(3.0 * noise) == ([], pytest.approx(found_noise, rel=0.3))


def test_a_step_smaller_than_the_noise_allows_is_not_reported():
    rng = np.random.default_rng(4)
    values = 3.0 * np.exp(0.02 * rng.standard_normal(200)) * np.where(np.arange(200) >= 100, 1.03, 1.0)
    steps, noise = trends.find_steps(values)
    assert trends.detectable_step(noise) > 0.03 and steps == []


def test_one_odd_run_is_not_a_step_and_barely_moves_the_noise():
    values = np.full(40, 3.0) * (1 + 0.003 * np.sin(np.arange(40)))
    odd = values.copy()
    odd[20] *= 1.75
    assert trends.find_steps(odd)[0] == []
    assert trends.run_noise(np.log(odd)) < 2 * trends.run_noise(np.log(values))


def test_change_p_pays_for_choosing_the_split():
    rng = np.random.default_rng(5)
    flat = rng.standard_normal(40)
    assert trends.change_p(flat) > 0.05
    assert trends.change_p(np.concatenate([flat[:20], flat[20:] + 3])) < 0.002
    assert trends.change_p([1.0, 2.0, 3.0, 4.0, 5.0]) == 1.0  # no split leaves 3 a side


def test_runs_of_one_commit_keep_their_saved_order_and_commits_sort_by_time(aa, tmp_path):
    docs = th.resampled(aa, 6, seed=1)
    for doc in docs[2:4]:  # one commit measured twice
        doc["commit_info"] = dict(docs[2]["commit_info"])
    paths = th.write(tmp_path / "h200", list(reversed(docs)))  # saved newest commit first
    runs, _ = trends.read_storage(tmp_path)
    # the commit measured twice keeps its saved order (0003 then 0004), not its run times (03:20 then 02:20)
    assert [r.path for r in runs] == [paths[5], paths[4], paths[2], paths[3], paths[1], paths[0]]
    assert runs[2].commit == runs[3].commit and runs[2].path.name < runs[3].path.name


# ---------------------------------------------------------------- histories from real runs


def test_planted_steps_are_found_at_their_run(aa, tmp_path):
    plant = {(n, "compute"): 1.03 for n in aa["runs"][0]["tests"]}
    plant.update({(n, "wall"): 1.10 for n in aa["runs"][0]["tests"]})
    th.write(tmp_path / "h200", th.resampled(aa, 100, seed=11, plant=plant, plant_at=AT))
    result = judge(tmp_path, metrics=["compute", "wall"])
    found = {(c.test, c.metric): c for c in result.changes}
    for case in SEE_3_PERCENT_COMPUTE:
        change = found.get((name(case), "compute"))
        assert change and abs(change.bad.x - AT) <= 1, (case, change)
        assert change.step.ratio == pytest.approx(1.03, abs=0.01) and change.slower
    for case in SEE_10_PERCENT_WALL:
        change = found.get((name(case), "wall"))
        assert change and abs(change.bad.x - AT) <= 1, (case, change)
        assert change.step.ratio == pytest.approx(1.10, abs=0.03)
    assert all(abs(c.bad.x - AT) <= 3 for c in result.changes), [(c.test, c.metric, c.bad.x) for c in result.changes]
    for case in ("multi_context", "async_postprocess-b1"):  # their run-to-run noise hides 3% of GPU compute
        assert (name(case), "compute") not in found


def test_aa_history_reports_no_change(aa, tmp_path):
    th.write(tmp_path / "h200", th.resampled(aa, 100, seed=21))
    result = judge(tmp_path)
    assert result.changes == []
    assert len(result.machines) == 1 and result.machines[0][1] == trends.UNKNOWN  # no nvidia_driver: one machine
    assert len(result.series) == 12 * 5 and all(len(s.groups) == 1 and s.groups[0].searched for s in result.series)
    assert "No change found" in trends.markdown(result)


def test_real_ab_runs_show_the_planted_wall_step_and_nothing_else(tmp_path):
    # A1..A7, then B1..B7 (a host busy-wait of about 10% of wall in baseline, pinned_memory and fp16): real
    # samples, 15 rounds each, no resampling. Only fp16's step stands out of its noise in 7 + 7 runs.
    th.write(tmp_path / "ab", th.real_ab(th.samples("h200-ab-samples.json")))
    result = judge(tmp_path, metrics=["compute", "wall"])
    assert [(c.test, c.metric, c.bad.x) for c in result.changes] == [(name("fp16"), "wall", 7)]
    change = result.changes[0]
    assert change.good.run.commit == th.commit_id(0) and change.bad.run.commit == th.commit_id(1)
    assert trends.confirm_commands(change) == [
        f"trtbench ab --base {th.commit_id(0)} --head {th.commit_id(1)} -k 'test_approach[torch-fp16]'",
        f"trtbench bisect --good {th.commit_id(0)} --bad {th.commit_id(1)} -k 'test_approach[torch-fp16]' "
        "--metric wall",
    ]


def test_a_machine_change_splits_the_series_and_is_not_a_step(aa, tmp_path):
    old = dict(aa["machine_info"], nvidia_driver="580.95.05")
    new = dict(aa["machine_info"], nvidia_driver="580.159.04")
    first = th.resampled(aa, 30, seed=31, machine=old)
    # the new driver's GPU compute is 5% slower everywhere: a step of the machine, not of the code
    second = th.resampled(
        aa, 30, seed=32, first_index=30, machine=new, plant={(n, "compute"): 1.05 for n in aa["runs"][0]["tests"]}
    )
    th.write(tmp_path / "h200", first + second)
    result = judge(tmp_path, metrics=["compute"])
    assert [m[1] for m in result.machines] == ["580.95.05", "580.159.04"]
    assert result.changes == []
    graph = next(s for s in result.series if s.test == name("cuda_graph"))
    assert [(g.machine, len(g.points), g.points[0].x) for g in graph.groups] == [(0, 30, 0), (1, 30, 30)]
    page = trends.page(result)
    assert (
        page.count("<rect ") == 2 * 12 and "M2: NVIDIA H200, driver 580.159.04" in page
    )  # a band per machine and chart


def test_a_run_of_another_model_is_kept_apart(aa, tmp_path):
    docs = th.resampled(aa, 40, seed=41)
    other = th.resampled(
        aa,
        1,
        seed=42,
        first_index=20,
        machine=dict(aa["machine_info"], model="resnet50"),
        plant={(n, m): 3.0 for n in aa["runs"][0]["tests"] for m in ("compute", "wall")},
    )
    th.write(tmp_path / "h200", docs[:20] + other + docs[20:])
    result = judge(tmp_path, metrics=["compute", "wall"])
    assert result.changes == []
    resnet18 = [s for s in result.series if s.model == "resnet18"]
    resnet50 = [s for s in result.series if s.model == "resnet50"]
    assert len(resnet18) == len(resnet50) == 24
    assert all(len(s.groups[0].points) == 40 and s.groups[0].searched for s in resnet18)
    assert all(len(s.groups[0].points) == 1 and not s.groups[0].searched for s in resnet50)
    assert [p.x for p in resnet18[0].groups[0].points] == list(range(40))  # its x axis: resnet18's runs only


def test_the_same_commit_on_both_sides_is_the_runner_not_the_code(aa, tmp_path):
    docs = th.resampled(aa, 30, seed=51, plant={(name("cuda_graph"), "compute"): 1.05}, plant_at=15)
    for doc in docs:
        doc["commit_info"] = dict(docs[0]["commit_info"])
    th.write(tmp_path / "h200", docs)
    result = judge(tmp_path, metrics=["compute"], patterns=["*cuda_graph]"])
    [change] = result.changes
    assert change.bad.x == 15 and trends.confirm_commands(change) == []
    assert "the runner changed, not the code" in trends.markdown(result)


def test_a_dirty_run_after_the_step_gets_no_command(aa, tmp_path):
    docs = th.resampled(aa, 30, seed=52, plant={(name("cuda_graph"), "compute"): 1.05}, plant_at=15)
    for doc in docs[15:]:
        doc["commit_info"]["dirty"] = True
    th.write(tmp_path / "h200", docs)
    [change] = judge(tmp_path, metrics=["compute"], patterns=["*cuda_graph]"]).changes
    assert change.bad.x == 15 and change.bad.run.dirty and trends.confirm_commands(change) == []
    assert trends.why_no_commands(change).startswith("a run with uncommitted changes (dirty)")


# ---------------------------------------------------------------- the command


def write_bad_files(folder: Path) -> dict[str, str]:
    """A corrupt run, a foreign JSON and a run of an old schema; what each must be left out with."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "0099_corrupt.json").write_text('{"machine_info": {"gpu_name": ')
    (folder / "package.json").write_text(json.dumps({"name": "something-else", "version": "1.0.0"}))
    old = th.saved_run({"gpu_name": "NVIDIA H200", "trtbench_schema": 1}, 0, {})
    (folder / "0098_old.json").write_text(json.dumps(old))
    return {
        "0099_corrupt.json": "not valid JSON",
        "package.json": "not a pytest-benchmark run",
        "0098_old.json": "saved before per-round samples were recorded",
    }


def test_bad_files_are_left_out_one_line_each_and_the_rest_read(aa, tmp_path, capsys):
    th.write(tmp_path / "runs" / "h200", th.resampled(aa, 12, seed=61))
    expected = write_bad_files(tmp_path / "runs" / "h200")
    assert main(tmp_path / "runs", "--out", tmp_path / "out", "--metric", "compute") == EXIT_OK
    out = capsys.readouterr().out
    left = [line for line in out.splitlines() if line.startswith("- left out: ")]
    assert len(left) == 3
    for file, why in expected.items():
        [line] = [x for x in left if f"/{file}: " in x]
        assert why in line, line
    assert "12 runs" in out.splitlines()[0]
    page = (tmp_path / "out" / "trends.html").read_text()
    assert page.count("<li>left out: ") == 3 and "package.json: not a pytest-benchmark run" in page
    assert (tmp_path / "out" / "trends.md").read_text() in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["{missing}"], "STORAGE {missing}: not a folder"),
        (["{empty}"], "STORAGE {empty}: no usable saved run among its 0 JSON file(s)"),
        (
            ["{bad}"],
            "STORAGE {bad}: no usable saved run among its 3 JSON file(s); left out: {bad}/0098_old.json: saved",
        ),
        (["{runs}", "--metric", "latency"], "--metric latency: not a metric; allowed: compute, wall, upload"),
        (["{runs}", "-k", "*nothing*"], "-k *nothing*: matches none of the 12 tests"),
        (["{runs}", "--min-runs", "2"], "--min-runs 2: too few; allowed: 6 or more"),
    ],
)
def test_unusable_input_is_refused_in_one_line(aa, tmp_path, capsys, argv, message):
    where = {
        "missing": tmp_path / "missing",
        "empty": tmp_path / "empty",
        "bad": tmp_path / "bad",
        "runs": tmp_path / "runs",
    }
    where["empty"].mkdir()
    write_bad_files(where["bad"])
    th.write(where["runs"], th.resampled(aa, 3, seed=71))
    assert main(*[a.format(**where) for a in argv], "--out", tmp_path / "out") == EXIT_REFUSED
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: " + message.format(**where)), err
    assert not (tmp_path / "out").exists()


def test_the_command_runs_as_a_module(aa, tmp_path):
    th.write(
        tmp_path / "runs", th.resampled(aa, 20, seed=81, plant={(name("cuda_graph"), "compute"): 1.03}, plant_at=10)
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "trtbench",
            "trends",
            str(tmp_path / "runs"),
            "--out",
            str(tmp_path / "out"),
            "-k",
            "*cuda_graph]",
        ],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == ("## Trends: 1 change(s) in 20 runs of 1 machine(s), 1 tests x 5 metrics")
    assert "trtbench bisect --good" in proc.stdout and proc.stderr == ""
    missing = subprocess.run(
        [sys.executable, "-m", "trtbench", "trends", str(tmp_path / "nowhere")],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert missing.returncode == 2 and missing.stdout == ""
    refusal = f"error: STORAGE {tmp_path / 'nowhere'}: not a folder; give the folder of saved runs (e.g. .benchmarks)"
    assert missing.stderr.splitlines() == [refusal]


# ---------------------------------------------------------------- the page


def test_the_page_holds_a_chart_per_test_and_metric_and_the_changes(aa, tmp_path):
    plant = {(name("cuda_graph"), "compute"): 1.03, (name("pinned_memory"), "wall"): 1.10}
    th.write(tmp_path / "runs", th.resampled(aa, 40, seed=91, plant=plant, plant_at=20))
    write_bad_files(tmp_path / "runs")
    assert main(tmp_path / "runs", "--out", tmp_path / "out") == EXIT_OK
    text = (tmp_path / "out" / "trends.html").read_text()
    page = parse(text)
    assert page.charts == page.tags["svg"] == 12 * 5
    assert page.external == []  # self-contained: no URL, no src
    rows = [i for i in page.ids if i.startswith("change-")]
    assert rows == ["change-0", "change-1", "change-2"]  # wall and img/s of pinned_memory, compute of cuda_graph
    assert {f"#{r}" for r in rows} <= set(page.hrefs)  # each change point links to its row
    words = "".join(page.text)
    assert "trtbench ab --base" in words and "--metric compute" in words and "left out: " in words
    assert page.tags["circle"] == 40 * 12 * 5


def test_the_page_of_100_runs_and_24_tests_is_small(aa, tmp_path):
    th.write(tmp_path / "runs", th.resampled(aa, 100, seed=101, copies=2))
    result = judge(tmp_path / "runs")
    text = trends.page(result)
    assert len({s.test for s in result.series}) == 24
    assert parse(text).charts == 24 * 5
    assert len(text.encode()) < 5_000_000


BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
LOAD_PROBE = """<script>addEventListener('load', () => { document.body.offsetHeight;
document.title = 'opened in ' + performance.now().toFixed(0) + ' ms, svg ' + document.querySelectorAll('svg').length;
});</script>"""


@pytest.mark.skipif(BROWSER is None, reason="no headless browser (chromium) installed")
def test_the_page_opens_in_a_headless_browser(aa, tmp_path):
    th.write(tmp_path / "runs", th.resampled(aa, 100, seed=111))
    page = trends.page(judge(tmp_path / "runs", metrics=["compute", "wall"]))
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", LOAD_PROBE + "</body>"))  # the page itself has no script
    proc = subprocess.run(
        [
            BROWSER,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}",
            "--dump-dom",
            probe.as_uri(),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r"<title>opened in (\d+) ms, svg (\d+)</title>", proc.stdout)
    assert found, proc.stdout[:500] + proc.stderr[-2000:]
    assert int(found.group(2)) == 12 * 2 and int(found.group(1)) < 2000


def test_too_few_runs_to_search_is_cant_tell_not_no_change(aa, tmp_path, capsys):
    th.write(tmp_path / "h200", th.resampled(aa, 5, seed=51))
    assert trtbench("trends", tmp_path / "h200", "--out", tmp_path / "out") == 3
    out = capsys.readouterr().out
    assert "Nothing searched: all " in out and "fewer than 10 runs (--min-runs)" in out and "No change found" not in out
    th.write(tmp_path / "h200", th.resampled(aa, 10, seed=52, first_index=5), first_number=6)
    assert trtbench("trends", tmp_path / "h200", "--out", tmp_path / "out") == 0
