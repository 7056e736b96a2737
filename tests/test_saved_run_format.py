"""The saved-run format's one reader gives what the readers it replaced gave: the run in
docs/ (and a copy of it with slowdowns planted) compares and reports as with the code of
main at 2a42d91, whose output is kept in tests/data/. What differs is by design: the
history a comparison used is named, multi_context's per-batch GPU spans are no longer
gated (its batches overlap), and the machine table names the driver's own version."""

import json
from pathlib import Path

from tests.helpers import trtbench

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
DOCS_RUN = ROOT / "docs" / "h100" / "resnet18-torch-run.json"


def planted_copy(folder: Path) -> tuple[Path, Path]:
    """The docs run, and a copy with fp16's wall time 12% and cuda_graph's GPU time 3% slower."""
    doc = json.loads(DOCS_RUN.read_text())
    old = folder / "0001_docs.json"
    old.write_text(json.dumps(doc))
    for bench in doc["benchmarks"]:
        samples = bench.get("extra_info", {}).get("samples")
        if samples and bench["name"].endswith("-fp16]"):
            samples["wall"] = [v * 1.12 for v in samples["wall"]]
        if samples and bench["name"].endswith("-cuda_graph]"):
            samples["compute"] = [v * 1.03 for v in samples["compute"]]
    new = folder / "0002_planted.json"
    new.write_text(json.dumps(doc))
    return old, new


def test_compare_decides_as_main_did(tmp_path, capsys):
    old, new = planted_copy(tmp_path)
    assert trtbench("compare", old, new) == 0
    lines = capsys.readouterr().out.replace(str(tmp_path) + "/", "RUNS/").replace(str(tmp_path), "RUNS").splitlines()
    expected = (DATA / "main-2a42d91-compare.txt").read_text().splitlines()
    assert lines.pop(2) == "history for thresholds: 1 run(s) of the same GPU, TensorRT, model and weights in RUNS: 0001"
    dropped = [x for x in expected if x.startswith("test_approach[torch-multi_context]") and " compute " in x]
    assert len(dropped) == 1
    assert lines == [x for x in expected if x not in dropped]


def test_report_renders_as_main_did(tmp_path):
    old, _ = planted_copy(tmp_path)
    assert trtbench("report", old, "--out", tmp_path / "r") == 0
    lines = (tmp_path / "r" / "report.md").read_text().splitlines()
    assert lines.pop(lines.index("| nvidia_driver | ? |"))
    assert lines == (DATA / "main-2a42d91-report.md").read_text().splitlines()
