"""The saved-run format, and where saved runs are kept. Every writer and reader goes
through this module.

A saved run is pytest-benchmark's JSON (``--benchmark-autosave``, ``--benchmark-json``)
with the suite's additions:

* ``machine_info``: the GPU, its driver, CUDA, TensorRT and library versions, the model and
  its weights, and ``trtbench_schema`` (:data:`SCHEMA`);
* each measured benchmark's ``extra_info``: a :class:`TestRecord`, the per-round samples
  of every metric (ms per batch) and the figures drawn from them;
* ``trtbench``: the run's notes and what the correctness checks could see.

Runs are kept under ``<storage>/<GPU>-trt-<TensorRT version>/<pytest-benchmark's machine
id>/NNNN_*.json``: runs of different GPUs or TensorRT versions never mix.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from trtbench.catalogue import approach, approach_of
from trtbench.cli import Unusable, read_json

SCHEMA = 2  # saved runs carry per-round samples from this schema on
IDENTITY = ("gpu_name", "tensorrt", "model")  # runs compare only with runs of the same ones
# thresholds come only from runs of the same weights too: the same kernels can time
# differently on other weight values
THRESHOLD_IDENTITY = (*IDENTITY, "weights")
# what a series of runs over time must share (trends): the driver too
MACHINE_IDENTITY = ("gpu_name", "nvidia_driver", "tensorrt", "model", "weights")
# what a report shows of the machine
MACHINE_FIELDS = (
    "gpu_name",
    "compute_capability",
    "nvidia_driver",
    "cuda_driver",
    "cuda_runtime",
    "tensorrt",
    "torch",
    "torchvision",
    "onnxruntime",
    "cuda_bindings",
    "model",
)
# per-round samples (ms per batch): GPU spans of CUDA events, host enqueue time, and wall
METRICS = ("wall", "compute", "upload", "download", "enqueue", "gpu_latency", "gpu_busy")
SPAN_KINDS = ("upload", "compute", "download", "enqueue", "postprocess")
# a test's figures that readers format as numbers: absent or None, else a number
NUMBER_FIGURES = (
    "ms_per_batch_iqr",
    "images_per_s",
    "compute_ms_per_batch",
    "upload_ms_per_batch",
    "download_ms_per_batch",
    "enqueue_ms_per_batch",
    "gpu_busy_ms_per_batch",
    "latency_p50_ms",
    "latency_p99_ms",
    "rel_l2_error",
    "top1_agreement",
    "top5_agreement",
    "peak_device_mb",
    "gpu_compute_cv",
)
DISCRIMINATION_KEYS = ("batch", "distinct_classes", "image_dependent_share")  # what a run says of its inputs
DEFAULT_STORAGE = Path(".benchmarks")
RUN_FILE = re.compile(r"(\d{4,})_.*\.json$")  # pytest-benchmark's NNNN_*.json


class Malformed(Unusable):
    """A saved run (or a figure about to be saved) that breaks the format; one line."""


def _positive(value: Any) -> bool:
    return _number(value) and math.isfinite(value) and value > 0


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)  # numpy's too: the writer checks


def _times(metric: str, values: Any) -> tuple[float, ...]:
    """Per-round times: a list of finite numbers above zero."""
    if not isinstance(values, list):
        raise ValueError(f"samples.{metric}: expected a list of per-round times, got {type(values).__name__}")
    for v in values:
        if not _positive(v):
            raise ValueError(f"samples.{metric}: {v!r} is not a time (a finite number above zero)")
    return tuple(float(v) for v in values)


def _span_ok(span: Any) -> bool:
    if not isinstance(span, dict) or span.get("span") not in SPAN_KINDS or not ("stream" in span or "thread" in span):
        return False
    start, end = span.get("start_ms"), span.get("end_ms")
    times = (start, end)
    return (
        all(isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) for t in times)
        and end >= start
    )


@dataclasses.dataclass(frozen=True)
class TestRecord:
    """What a saved run records of one measured test (its ``extra_info``)."""

    name: str  # pytest's test name, e.g. test_approach[torch-cuda_graph-b1]
    approach: str
    backend: str
    batch_size: int
    sweep: bool  # a point of the batch-size sweep (compared; not an ordering figure)
    samples: dict[str, tuple[float, ...]]  # metric -> per-round ms per batch
    info: dict[str, Any]  # everything saved (medians, breakdown, floor, errors, timeline)

    __test__ = False  # not a pytest test class, whatever its name

    @classmethod
    def from_info(cls, name: str, info: Any) -> TestRecord:
        """The record of ``info`` (an ``extra_info``), checked; ValueError says what is wrong."""
        if not isinstance(info, dict) or not isinstance(info.get("samples"), dict):
            raise ValueError("no per-round samples")
        samples = {m: _times(m, v) for m, v in info["samples"].items() if m in METRICS and v not in (None, [])}
        if "wall" not in samples and "compute" not in samples:
            raise ValueError("neither wall nor compute samples")
        batch = info.get("batch_size")
        if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
            raise ValueError(f"batch_size {batch!r} is not a batch size")
        rates = ("ms_per_batch", "images_per_s", "latency_p99_ms") if info.get("sweep") else ("ms_per_batch",)
        for key in rates:
            if not _positive(info.get(key)):
                raise ValueError(f"{key} {info.get(key)!r} is not a time or rate above zero")
        for key in NUMBER_FIGURES:
            if info.get(key) is not None and not _number(info[key]):
                raise ValueError(f"{key} {info[key]!r} is not a number")
        floor = info.get("floor")
        if floor is not None and not (isinstance(floor, dict) and _positive(floor.get("floor_ms"))):
            raise ValueError(f"floor {floor!r} has no floor_ms above zero")
        timeline = info.get("timeline")
        if timeline is not None:
            sides = [timeline.get("gpu", []), timeline.get("host", [])] if isinstance(timeline, dict) else [None]
            if not all(isinstance(side, list) and all(_span_ok(x) for x in side) for side in sides):
                raise ValueError("a malformed timeline (each span needs span, stream or thread, start_ms and end_ms)")
        return cls(
            name,
            str(info.get("approach", "?")),
            str(info.get("backend", "?")),
            batch,
            bool(info.get("sweep")),
            samples,
            info,
        )

    def gated(self, metric: str) -> tuple[float, ...] | None:
        """The samples a gated metric is judged on: an overlapping approach's GPU figure is its
        GPU's busy time over the round, not per-batch spans that hold the other contexts' work
        (None: not recorded, e.g. busy time in runs saved before it was)."""
        if metric == "compute" and _overlapping(self.name):
            return self.samples.get("gpu_busy")
        return self.samples.get(metric)


def _overlapping(test_name: str) -> bool:
    try:
        return approach(approach_of(test_name)).overlapping_batches
    except KeyError:
        return False


def measured(info: Any) -> bool:
    """Whether a benchmark's ``extra_info`` holds per-round wall or compute samples."""
    samples = info.get("samples") if isinstance(info, dict) else None
    return isinstance(samples, dict) and any(samples.get(m) not in (None, []) for m in ("wall", "compute"))


def check_figures(name: str, info: dict[str, Any]) -> None:
    """What a writer calls before a test's figures are saved: the readers' checks."""
    try:
        TestRecord.from_info(name, info)
    except ValueError as exc:
        raise Malformed(f"{name}: would save malformed figures ({exc})") from None


def run_section(notes: Sequence[str], discrimination: dict[str, Any] | None) -> dict[str, Any]:
    """The suite's own part of a saved run (``trtbench``)."""
    return {"discrimination": discrimination, "notes": list(notes)}


@dataclasses.dataclass(frozen=True)
class SavedRun:
    path: Path
    machine: dict[str, Any]
    commit: dict[str, Any]
    saved_at: str  # pytest-benchmark's datetime
    tests: dict[str, TestRecord]  # the measured tests, by name
    notes: tuple[str, ...] = ()
    discrimination: dict[str, Any] | None = None

    @classmethod
    def load(cls, path: Path) -> SavedRun:
        """A saved run of this suite, checked: Malformed says what is wrong in one line."""
        path = Path(path)
        try:
            doc = read_json(path)
        except Unusable as exc:
            raise Malformed(str(exc)) from None
        if (
            not isinstance(doc, dict)
            or not isinstance(doc.get("benchmarks"), list)
            or not isinstance(doc.get("machine_info"), dict)
        ):
            raise Malformed(
                f"{path}: not a pytest-benchmark run (expected an object with 'benchmarks' and 'machine_info')"
            )
        schema = doc["machine_info"].get("trtbench_schema")
        if schema is None:
            raise Malformed(
                f"{path}: a pytest-benchmark run, but not of this suite (its machine_info has no trtbench_schema)"
            )
        if not isinstance(schema, int) or isinstance(schema, bool) or schema < SCHEMA:
            raise Malformed(
                f"{path}: saved before per-round samples were recorded (schema {schema!r}, need "
                f"{SCHEMA}); run the suite again to make a baseline"
            )
        tests = {}
        for bench in doc["benchmarks"]:
            info = bench.get("extra_info") if isinstance(bench, dict) else None
            if not measured(info):
                continue  # not measured (skipped, --benchmark-disable) or not one of ours
            try:
                record = TestRecord.from_info(str(bench.get("name")), info)
            except ValueError as exc:
                raise Malformed(f"{path}: benchmark {bench.get('name')!r}: {exc}") from None
            tests[record.name] = record
        section = doc.get("trtbench") if isinstance(doc.get("trtbench"), dict) else {}
        found = section.get("discrimination")
        if found is not None and not (
            isinstance(found, dict) and all(_number(found.get(k)) for k in DISCRIMINATION_KEYS)
        ):
            raise Malformed(
                f"{path}: trtbench.discrimination {found!r} needs the numbers {', '.join(DISCRIMINATION_KEYS)}"
            )
        commit = doc.get("commit_info") if isinstance(doc.get("commit_info"), dict) else {}
        return cls(
            path,
            doc["machine_info"],
            commit,
            str(doc.get("datetime", "")),
            tests,
            tuple(str(n) for n in section.get("notes") or ()),
            section.get("discrimination"),
        )

    def same(self, other: SavedRun, fields: Sequence[str] = IDENTITY) -> bool:
        return all(self.machine.get(f) == other.machine.get(f) for f in fields)

    def measured(self) -> SavedRun:
        """Self, or Malformed if it measured nothing."""
        if not self.tests:
            raise Malformed(
                f"{self.path}: measured nothing (no benchmark with per-round samples; every test skipped "
                "or --benchmark-disable?)"
            )
        return self


# ---------------------------------------------------------------- storage


def storage_tag(machine: dict[str, Any]) -> str:
    """The folder of a GPU model and TensorRT version: saved runs of different ones never mix."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{machine['gpu_name']}-trt-{machine['tensorrt']}")


def saved_runs(storage: Path, recursive: bool = True) -> list[Path]:
    """Saved runs (NNNN_*.json) in ``storage``, oldest first (by number, then time)."""
    found = storage.rglob("*.json") if recursive else storage.glob("*.json")
    numbered = [(int(m.group(1)), p) for p in found if p.is_file() and (m := RUN_FILE.match(p.name))]
    return [p for _, p in sorted(numbered, key=lambda n_p: (n_p[0], n_p[1].stat().st_mtime))]


def load_all(paths: Iterable[Path]) -> tuple[list[SavedRun], list[str]]:
    """The runs among ``paths`` that load, and one line for each that does not."""
    runs, left_out = [], []
    for path in paths:
        try:
            runs.append(SavedRun.load(path))
        except Malformed as exc:
            left_out.append(f"left out: {exc}")
    return runs, left_out


def history(new: SavedRun, paths: Iterable[Path]) -> tuple[list[SavedRun], list[str]]:
    """The saved runs among ``paths`` of the same GPU, TensorRT version and model as ``new``,
    in the given order, ``new`` itself excluded; and a line for each run left out, and why."""
    runs, left_out = load_all(p for p in paths if p.resolve() != new.path.resolve())
    left_out += [f"left out: {r.path}: another GPU, TensorRT version or model" for r in runs if not r.same(new)]
    return [r for r in runs if r.same(new)], left_out


def prune(storage: Path, keep: int) -> list[Path]:
    """Keep the newest ``keep`` saved runs of each folder below ``storage``; the removed ones."""
    if keep < 1:
        raise Unusable(f"--keep {keep}: keep at least 1 run per folder")
    folders: dict[Path, list[Path]] = {}
    for path in saved_runs(storage):
        folders.setdefault(path.parent, []).append(path)
    removed = []
    for runs in folders.values():
        for path in runs[:-keep]:
            path.unlink()
            removed.append(path)
    return removed
