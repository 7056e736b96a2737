"""The graph variants a backend runs and the ONNX export of each.

``logits`` (float input, logits out), ``postprocess`` (+ softmax top-5 probabilities and
classes computed in the graph) and ``uint8`` (uint8 NHWC input normalised in the graph, +
the post-processing outputs). Names as the tutorial's.
"""

from __future__ import annotations

import copy
import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from trtbench.catalogue import GRAPH_VARIANTS, INPUT_NAME, TOP_K, ModelSpec, graph_io


def classifier_graph(model: Any, variant: str = "logits", fp16: bool = False) -> Any:
    """``model`` wrapped as one of the graph variants (the module the torch backend runs
    and the ONNX export traces). ``fp16``: fp16 weights and activations, fp32 outputs."""
    if variant not in GRAPH_VARIANTS:
        raise ValueError(f"graph variant {variant!r} is not one of {GRAPH_VARIANTS}")
    dtype = torch.float16 if fp16 else torch.float32

    class ClassifierGraph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = copy.deepcopy(model).to(dtype)  # the caller's model stays as it is
            self.variant = variant

        def prepare(self, x: torch.Tensor) -> torch.Tensor:
            """The input's first use, a new tensor: after it, the input buffer may be reused."""
            if self.variant == "uint8":  # NHWC uint8 -> NCHW (a channels-last view), normalised in fp32
                # cast first: TensorRT takes UINT8 only as a network input feeding a Cast (trtbench.readiness)
                x = x.float().permute(0, 3, 1, 2) / 127.5 - 1.0
            return x.to(dtype=dtype, memory_format=torch.channels_last)

        def head(self, x: torch.Tensor) -> Any:
            logits = self.model(x).float()
            if self.variant == "logits":
                return logits
            probs, classes = torch.softmax(logits, dim=1).topk(TOP_K, dim=1)
            return logits, probs, classes.to(torch.int32)

        def forward(self, x: torch.Tensor) -> Any:
            return self.head(self.prepare(x))

    return ClassifierGraph().eval()


def export_onnx(model: Any, spec: ModelSpec, path: Path, variant: str = "logits", fp16: bool = False) -> Path:
    """Export a graph variant with a dynamic batch; checked by onnx.checker. ``fp16``
    exports fp16 weights with fp32 I/O, the network TensorRT 10 and 11 build strongly typed."""
    graph = classifier_graph(model, variant, fp16)
    inputs, outputs = graph_io(spec, variant)
    dtype, shape = inputs[INPUT_NAME]
    dummy = torch.zeros((1, *shape), dtype=torch.uint8 if dtype == np.uint8 else torch.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.onnx")
    names = list(outputs)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # ViT's fused attention has no ONNX export
    try:
        _export(torch, graph, dummy, tmp, names)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    onnx.checker.check_model(str(tmp), full_check=True)
    tmp.replace(path)
    return path


def _export(torch: Any, graph: Any, dummy: Any, tmp: Path, names: list[str]) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            (dummy,),
            str(tmp),
            input_names=[INPUT_NAME],
            output_names=names,
            dynamic_axes={n: {0: "nBatchSize"} for n in [INPUT_NAME, *names]},
            opset_version=17,
            dynamo=False,
        )


def cached_export(model: Any, spec: ModelSpec, folder: Path, variant: str, fp16: bool, weights: str) -> Path:
    """``export_onnx`` once per content: the file is kept under a key of everything that makes
    it (the model and its weights' identity, the variant, torch's and onnx's versions, and this
    module's and the model module's own code), so a changed export is never served stale, and
    every process of an A/B shares the unchanged ones instead of exporting again."""
    from trtbench import model as model_module

    code = hashlib.sha256(Path(__file__).read_bytes() + Path(model_module.__file__).read_bytes()).hexdigest()
    key = json.dumps([spec.name, spec.image_size, weights, variant, fp16, torch.__version__, onnx.__version__, code])
    path = (
        folder / f"{spec.name}-{variant}{'-fp16' if fp16 else ''}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.onnx"
    )
    if path.is_file():
        try:
            onnx.checker.check_model(str(path))
            return path
        except Exception:  # unreadable: export again and replace
            pass
    folder.mkdir(parents=True, exist_ok=True)
    return export_onnx(model, spec, path, variant, fp16)
