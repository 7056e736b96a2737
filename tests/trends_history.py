"""Histories of saved runs for the trends tests, built from real runs of the suite.

``tests/data/h200-aa-samples.json`` holds the per-round samples of 5 A/A runs on an H200
(see its "source"). A synthetic run takes the samples of one of those runs, picked at
random, and draws its rounds from them with replacement (the same rounds for every metric
of a test: a round is one measurement of all of them), so a history keeps both the
run-to-run noise of real processes and their round-to-round noise. A planted step
multiplies one metric's samples from a chosen run on. Each run is written as the suite
writes it: pytest-benchmark's JSON with machine_info, commit_info, datetime and the
per-round samples in extra_info.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

DATA = Path(__file__).resolve().parent / "data"
START = datetime(2026, 9, 1, tzinfo=UTC)
Plant = dict[tuple[str, str], float]  # (test, metric) -> factor on its samples


def samples(name: str = "h200-aa-samples.json") -> dict[str, Any]:
    return json.loads((DATA / name).read_text())


def commit_id(index: int) -> str:
    return hashlib.sha1(f"commit {index}".encode()).hexdigest()


def saved_run(
    machine: dict[str, Any],
    index: int,
    tests: dict[str, tuple[int, dict[str, list[float]]]],
    commit_index: int | None = None,
) -> dict[str, Any]:
    """One run as pytest-benchmark saves it: run ``index`` of a history, of commit ``commit_index``
    (default: its own), one commit an hour."""
    commit_index = index if commit_index is None else commit_index
    committed = START + timedelta(hours=commit_index)
    benchmarks = []
    for name, (batch, measured) in tests.items():
        wall = float(np.median(measured["wall"]))
        benchmarks.append(
            {
                "group": None,
                "name": name,
                "fullname": f"benchmarks/test_approaches.py::{name}",
                "params": {"case": name.split("[")[-1].rstrip("]")},
                "param": name.split("[")[-1].rstrip("]"),
                "extra_info": {
                    "backend": "torch",
                    "batch_size": batch,
                    "batches": 10,
                    "rounds": len(measured["wall"]),
                    "samples": measured,
                    "ms_per_batch": wall,
                    "images_per_s": batch * 1000.0 / wall,
                },
                "options": {
                    "disable_gc": False,
                    "timer": "perf_counter",
                    "min_rounds": 25,
                    "max_time": 1.0,
                    "min_time": 5e-06,
                    "warmup": False,
                },
                "stats": {
                    "min": wall / 1000,
                    "max": wall / 1000,
                    "mean": wall / 1000,
                    "median": wall / 1000,
                    "rounds": len(measured["wall"]),
                    "iterations": 1,
                },
            }
        )
    return {
        "machine_info": dict(machine),
        "commit_info": {
            "id": commit_id(commit_index),
            "time": committed.isoformat(),
            "author_time": committed.isoformat(),
            "dirty": False,
            "project": "trt-pipeline-bench",
            "branch": "main",
        },
        "benchmarks": benchmarks,
        "datetime": (START + timedelta(hours=index, minutes=20)).isoformat(),
        "version": "5.1.0",
    }


def resampled(
    data: dict[str, Any],
    runs: int,
    seed: int,
    plant: Plant | None = None,
    plant_at: int = 0,
    copies: int = 1,
    first_index: int = 0,
    machine: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """``runs`` saved runs drawn from the real runs in ``data``; ``plant`` multiplies samples from
    run ``plant_at`` (0-based) on; ``copies`` > 1 adds tests ``test_sweep[...-copyN]`` drawn apart."""
    rng = np.random.default_rng(seed)
    real = data["runs"]
    docs = []
    for j in range(runs):
        source = real[int(rng.integers(len(real)))]["tests"]
        tests = {}
        for copy in range(copies):
            for name, test in source.items():
                rounds = len(test["wall"])
                picked = rng.integers(0, rounds, rounds)
                measured = {}
                for metric in ("compute", "wall", "upload", "enqueue"):
                    if metric not in test:
                        continue
                    values = np.asarray(test[metric])[picked]
                    factor = (plant or {}).get((name, metric), 1.0) if j >= plant_at else 1.0
                    measured[metric] = [round(float(v) * factor, 6) for v in values]
                label = (
                    name if copy == 0 else name.replace("test_approach[", "test_sweep[").replace("]", f"-copy{copy}]")
                )
                tests[label] = (test["batch_size"], measured)
        docs.append(saved_run(machine or data["machine_info"], first_index + j, tests))
    return docs


def write(folder: Path, docs: Sequence[dict[str, Any]], first_number: int = 1) -> list[Path]:
    """Saved as pytest-benchmark names them: NNNN_<commit>_<date>.json."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, doc in enumerate(docs, first_number):
        stamp = datetime.fromisoformat(doc["datetime"]).strftime("%Y%m%d_%H%M%S")
        path = folder / f"{number:04d}_{doc['commit_info']['id']}_{stamp}.json"
        path.write_text(json.dumps(doc))
        paths.append(path)
    return paths


def real_ab(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The 14 real A/B runs as a history: A1..A7 on one commit, then B1..B7 on the next."""
    docs = []
    for j, run in enumerate(data["runs"]):
        tests = {name: (t["batch_size"], {m: t[m] for m in ("compute", "wall")}) for name, t in run["tests"].items()}
        docs.append(saved_run(data["machine_info"], j, tests, commit_index=0 if j < 7 else 1))
    return docs
