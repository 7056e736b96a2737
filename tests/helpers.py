"""Helpers shared by the CPU tests: synthetic saved runs as the suite writes them, and the
suite's command run in process."""

import json

import numpy as np

from trtbench import cli
from trtbench.runs import TestRecord

CASES = [
    "baseline",
    "reuse_buffers",
    "pinned_memory",
    "fp16",
    "overlap",
    "async_postprocess",
    "cuda_graph",
    "gpu_postprocess",
    "uint8_input",
]
MS = {c: 30.0 / (i + 1) for i, c in enumerate(CASES)}


def samples(median, spread, n, seed):
    """n noisy per-round times around median; never below 1% of it (a time is positive)."""
    return list(np.maximum(median * (1 + spread * np.random.default_rng(seed).standard_normal(n)), median * 0.01))


def saved_run(
    path,
    ms=None,
    *,
    gpu="NVIDIA H100 80GB HBM3",
    trt="absent",
    model="resnet18",
    batch=128,
    seed=0,
    compute=None,
    spread=0.005,
    rounds=25,
    schema=2,
    sweep=(),
    timeline=True,
):
    ms = MS if ms is None else ms
    compute = compute or {}
    benches = []
    for k, (case, value) in enumerate(ms.items()):
        gpu_ms = compute.get(case, value * 0.8)
        extra = {
            "approach": case,
            "backend": "torch",
            "model": model,
            "batch_size": batch,
            "ms_per_batch": value,
            "ms_per_batch_iqr": value * 0.01,
            "images_per_s": batch / value * 1e3,
            "compute_ms_per_batch": gpu_ms,
            "upload_ms_per_batch": 1.0,
            "download_ms_per_batch": 0.1,
            "enqueue_ms_per_batch": 0.05,
            "latency_p50_ms": value,
            "latency_p99_ms": value * 1.2,
            "rel_l2_error": 5e-4,
            "top1_agreement": 1.0,
            "top5_agreement": 1.0,
            "peak_device_mb": 900.0,
            "gpu_compute_cv": 0.002,
            "sweep": False,
            "floor": {"floor_ms": value * 0.7, "upload_ms": 1.0, "compute_ms": value * 0.7},
            "samples": {
                "wall": samples(value, spread, rounds, seed * 100 + k),
                "compute": samples(gpu_ms, spread / 5, rounds, seed * 100 + k + 50),
            },
        }
        if timeline:
            extra["timeline"] = {
                "gpu": [
                    {"batch": i, "span": s, "stream": st, "start_ms": i * value + o, "end_ms": i * value + o + d}
                    for i in range(3)
                    for s, st, o, d in (
                        ("upload", "copy", 0, 1),
                        ("compute", "compute", 1, 2),
                        ("download", "compute", 3, 0.2),
                    )
                ],
                "host": [
                    {"batch": i, "span": s, "thread": t, "start_ms": i * value + o, "end_ms": i * value + o + 0.5}
                    for i in range(3)
                    for s, t, o in (("enqueue", "main", 0.5), ("postprocess", "worker", 3.3))
                ],
            }
        benches.append({"name": f"test_approach[torch-{case}]", "extra_info": extra})
    for approach, b in sweep:
        benches.append(
            {
                "name": f"test_sweep[torch-{approach}-b{b}]",
                "extra_info": {
                    "approach": approach,
                    "backend": "torch",
                    "batch_size": b,
                    "ms_per_batch": 1 + b / 50,
                    "images_per_s": b / (1 + b / 50) * 1e3,
                    "latency_p50_ms": 1 + b / 50,
                    "latency_p99_ms": 1.3 + b / 50,
                    "sweep": True,
                    "samples": {"wall": samples(1 + b / 50, spread, rounds, b)},
                },
            }
        )
    doc = {
        "machine_info": {
            "gpu_name": gpu,
            "tensorrt": trt,
            "torch": "2.11.0",
            "model": model,
            "trtbench_schema": schema,
        },
        "datetime": "2026-11-24T00:00:00",
        "commit_info": {"id": "abc"},
        "benchmarks": benches,
        "trtbench": {"discrimination": {"batch": 128, "distinct_classes": 119, "image_dependent_share": 0.99}},
    }
    path.write_text(json.dumps(doc))
    return path


def thresholds_file(tmp_path, text=""):
    path = tmp_path / "t.toml"
    path.write_text("[thresholds.wall]\ndefault = 0.10\n[thresholds.compute]\ndefault = 0.05\n" + text)
    return path


def record(name: str, batch: int, samples: dict[str, list[float]]) -> TestRecord:
    """A measured test of the given per-round samples (a run's figures besides them do not matter here)."""
    return TestRecord(
        name,
        name,
        "torch",
        batch,
        False,
        {m: tuple(v) for m, v in samples.items()},
        {"batch_size": batch, "samples": samples},
    )


def trtbench(*args: object) -> int:
    """``trtbench ARGS`` in this process: its exit status (output goes to capsys)."""
    return cli.main([str(a) for a in args])
