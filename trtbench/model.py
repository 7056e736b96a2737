"""ResNet-18, its ONNX exports, the input batches and the ONNX Runtime reference (CPU only)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from trtbench.engines import file_sha256, write_atomic

INPUT_NAME, OUTPUT_NAME = "input0", "output0"  # as the tutorial
IMAGE_SHAPE = (3, 224, 224)
WEIGHTS_SEED = 0


def build_resnet18(weights: Path | None = None):  # type: ignore[no-untyped-def]
    """torchvision's ResNet-18 in eval mode: seeded random weights, or a state dict."""
    import torch
    import torchvision

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(WEIGHTS_SEED)
        model = torchvision.models.resnet18(weights=None)
    if weights is not None:
        model.load_state_dict(load_weights(weights))
    return model.eval()


def load_weights(path: Path) -> dict:  # type: ignore[type-arg]
    import torch
    import torchvision

    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise TypeError(f"expected a state dict, found {type(state).__name__}")
    torchvision.models.resnet18(weights=None).load_state_dict(state)  # strict: names and shapes must match
    return state


def export_onnx(model, path: Path, fp16: bool = False) -> Path:  # type: ignore[no-untyped-def]
    """Export with a dynamic batch dimension; ``fp16`` exports fp16 weights with fp32 I/O
    (casts at the boundaries), the network TensorRT 11 builds strongly typed."""
    import copy

    import onnx
    import torch

    module = copy.deepcopy(model).eval()
    if fp16:
        module = _fp16_with_fp32_io(module.half())
    dummy = torch.zeros(1, *IMAGE_SHAPE)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.onnx")
    with torch.no_grad():
        torch.onnx.export(
            module, (dummy,), str(tmp), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "nBatchSize"}, OUTPUT_NAME: {0: "nBatchSize"}},
            opset_version=17, dynamo=False,
        )
    onnx.checker.check_model(str(tmp), full_check=True)
    tmp.replace(path)
    return path


def _fp16_with_fp32_io(inner):  # type: ignore[no-untyped-def]
    """fp16 weights and activations; fp32 input and output, cast at the boundaries."""
    import torch

    class Fp16WithFp32IO(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.m = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.m(x.half()).float()

    return Fp16WithFp32IO()


def make_batches(seed: int, batch_size: int, batches: int) -> list[np.ndarray]:
    """Seeded standard-normal float32 batches ``[batch, 3, 224, 224]``."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((batch_size, *IMAGE_SHAPE), dtype=np.float32) for _ in range(batches)]


def reference_key(onnx_sha256: str, seed: int, shapes: Sequence[tuple[int, ...]]) -> str:
    blob = json.dumps({"onnx": onnx_sha256, "seed": seed, "shapes": [list(s) for s in shapes], "v": 1})
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def run_onnxruntime(onnx_path: Path, batches: Sequence[np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return [session.run([OUTPUT_NAME], {INPUT_NAME: x})[0] for x in batches]


def reference_outputs(onnx_path: Path, seed: int, batches: Sequence[np.ndarray], cache_dir: Path) -> tuple[list[np.ndarray], bool]:
    """ONNX Runtime CPU outputs for exactly these batches, cached under (ONNX hash, seed,
    shapes). Returns (outputs, whether they came from the cache)."""
    key = reference_key(file_sha256(onnx_path), seed, [x.shape for x in batches])
    path = cache_dir / f"reference-{key}.npz"
    if path.exists():
        try:
            with np.load(path) as stored:
                outputs = [stored[f"b{i}"] for i in range(len(batches))]
            return outputs, True
        except (OSError, KeyError, ValueError):
            pass  # unreadable: recompute and overwrite
    outputs = run_onnxruntime(onnx_path, batches)
    import io

    buf = io.BytesIO()
    np.savez(buf, **{f"b{i}": out for i, out in enumerate(outputs)})
    write_atomic(path, buf.getvalue())
    return outputs, False
