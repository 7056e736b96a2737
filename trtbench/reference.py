"""The reference every batch is checked against: ONNX Runtime (CPU) on the same graph and
inputs, cached by content; and how well a model's outputs tell images apart (the
correctness checks' power)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from trtbench.catalogue import INPUT_NAME
from trtbench.files import file_sha256, write_atomic

# What "the outputs tell images apart" means.
MIN_DISTINCT_CLASSES_AT_128 = 64
MIN_IMAGE_DEPENDENT_SHARE = 0.5


def arrays_sha256(arrays: Sequence[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(json.dumps([list(a.shape), str(a.dtype)]).encode())
        digest.update(np.ascontiguousarray(a).data)
    return digest.hexdigest()


def run_onnxruntime(onnx_path: Path, batches: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return [dict(zip(names, session.run(names, {INPUT_NAME: x}))) for x in batches]


def reference_outputs(
    onnx_path: Path, batches: Sequence[np.ndarray], cache_dir: Path
) -> tuple[list[dict[str, np.ndarray]], bool]:
    """ONNX Runtime CPU outputs (every output of the graph) for exactly these batches,
    cached under (the ONNX file's hash, the inputs' hash): a reference of another model,
    graph or data is never reused. Returns (outputs, whether they came from the cache)."""
    key = hashlib.sha256(f"{file_sha256(onnx_path)}|{arrays_sha256(batches)}|v2".encode()).hexdigest()[:24]
    path = cache_dir / f"reference-{key}.npz"
    if path.exists():
        try:
            with np.load(path) as stored:
                names = sorted({k.split("/", 1)[1] for k in stored.files})
                outputs = [{n: stored[f"{i}/{n}"] for n in names} for i in range(len(batches))]
            return outputs, True
        except (OSError, KeyError, ValueError, IndexError):
            pass  # unreadable: recompute and overwrite
    outputs = run_onnxruntime(onnx_path, batches)
    buf = io.BytesIO()
    np.savez(buf, **{f"{i}/{n}": a for i, out in enumerate(outputs) for n, a in out.items()})
    write_atomic(path, buf.getvalue())
    return outputs, False


@dataclasses.dataclass(frozen=True)
class Discrimination:
    """How well a model's outputs tell the images of a batch apart (the check's power)."""

    batch: int
    distinct_classes: int
    image_dependent_share: float  # ||y - batch mean(y)|| / ||y||

    @classmethod
    def of(cls, logits: np.ndarray) -> Discrimination:
        y = logits.astype(np.float64)
        share = float(np.linalg.norm(y - y.mean(axis=0)) / np.linalg.norm(y))
        return cls(len(y), len(np.unique(y.argmax(axis=1))), share)

    @property
    def meets_targets(self) -> bool:
        needed = min(MIN_DISTINCT_CLASSES_AT_128, self.batch // 2)  # scaled for batches under 128
        return self.distinct_classes >= needed and self.image_dependent_share >= MIN_IMAGE_DEPENDENT_SHARE

    def as_record(self) -> dict[str, float | int]:
        """What a saved run records of it."""
        return {
            "batch": self.batch,
            "distinct_classes": self.distinct_classes,
            "image_dependent_share": self.image_dependent_share,
        }

    def describe(self) -> str:
        return (
            f"{self.distinct_classes} distinct top-1 classes in a batch of {self.batch}, image-dependent "
            f"share of the logits {self.image_dependent_share:.1%} (targets: >= "
            f"{min(MIN_DISTINCT_CLASSES_AT_128, self.batch // 2)} and >= {MIN_IMAGE_DEPENDENT_SHARE:.0%})"
        )
