"""What the suite measures, declared once: the approaches (in the tutorial's order, then the
two beyond it), the engines and graphs they run on, the test cases saved runs are keyed by,
and the names of the graphs' tensors.

Pure data: the judging code (compare, report, ordering, trends) imports it without the
GPU half; the GPU half (``trtbench.gpu.approaches``) implements one module per approach.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np

BACKENDS = ("tensorrt", "torch")

# tensor names of every graph (as the tutorial's)
INPUT_NAME, OUTPUT_NAME = "input0", "output0"
TOP5_PROB, TOP5_CLASS = "top5_prob", "top5_class"
TOP_K = 5
GRAPH_VARIANTS = ("logits", "postprocess", "uint8")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    image_size: int
    num_classes: int = 1000

    @property
    def chw(self) -> tuple[int, int, int]:
        return (3, self.image_size, self.image_size)

    @property
    def hwc(self) -> tuple[int, int, int]:
        return (self.image_size, self.image_size, 3)


def graph_io(
    spec: ModelSpec, variant: str
) -> tuple[dict[str, tuple[Any, tuple[int, ...]]], dict[str, tuple[Any, tuple[int, ...]]]]:
    """Inputs and outputs of a graph variant: name -> (numpy dtype, shape after the batch)."""
    inputs = {INPUT_NAME: (np.dtype(np.uint8), spec.hwc) if variant == "uint8" else (np.dtype(np.float32), spec.chw)}
    outputs: dict[str, tuple[Any, tuple[int, ...]]] = {OUTPUT_NAME: (np.dtype(np.float32), (spec.num_classes,))}
    if variant != "logits":
        outputs[TOP5_PROB] = (np.dtype(np.float32), (TOP_K,))
        outputs[TOP5_CLASS] = (np.dtype(np.int32), (TOP_K,))
    return inputs, outputs


# engine kind -> (compute precision, graph variant); outputs stay fp32
ENGINE_KINDS = {
    "fp32": ("fp32", "logits"),
    "fp16": ("fp16", "logits"),
    "multi_profile": ("fp16", "logits"),
    "shared_profile": ("fp16", "logits"),
    "fp16_postprocess": ("fp16", "postprocess"),
    "fp16_uint8": ("fp16", "uint8"),
}
# An engine kind only TensorRT can build, and why no other backend has it.
TENSORRT_ONLY_KINDS = {"multi_profile": "has no optimization profiles: multi_profile is TensorRT only"}


@dataclasses.dataclass(frozen=True)
class Approach:
    name: str  # stable: the test ids and the keys saved runs are compared by
    engine_kind: str
    host_memory: str  # "pageable" or "pinned"
    in_chain: bool  # each chain step must not be slower than the one before it (ordering)
    replays_graphs: bool = False  # its point: every launch a graph replay, never a silent fallback
    # its batches overlap (several contexts at once): a per-batch GPU span holds the other
    # contexts' work too, so it is no cost of the batch and is never gated
    overlapping_batches: bool = False

    @property
    def precision(self) -> str:
        return ENGINE_KINDS[self.engine_kind][0]

    @property
    def graph_variant(self) -> str:
        return ENGINE_KINDS[self.engine_kind][1]

    def unsupported(self, backend: str) -> str | None:
        """Why ``backend`` cannot run this approach, or None."""
        reason = TENSORRT_ONLY_KINDS.get(self.engine_kind)
        return f"{backend} {reason}" if reason and backend != "tensorrt" else None


APPROACHES = (
    Approach("baseline", "fp32", "pageable", in_chain=True),
    Approach("reuse_buffers", "fp32", "pageable", in_chain=True),
    Approach("pinned_memory", "fp32", "pinned", in_chain=True),
    Approach("fp16", "fp16", "pinned", in_chain=True),
    Approach("overlap", "fp16", "pinned", in_chain=True),
    Approach("async_postprocess", "fp16", "pinned", in_chain=True),
    Approach("cuda_graph", "fp16", "pinned", in_chain=True, replays_graphs=True),
    Approach("multi_context", "shared_profile", "pinned", in_chain=False, overlapping_batches=True),
    Approach("multi_profile", "multi_profile", "pinned", in_chain=False),
    # beyond the tutorial
    Approach("gpu_postprocess", "fp16_postprocess", "pinned", in_chain=True, replays_graphs=True),
    Approach("uint8_input", "fp16_uint8", "pinned", in_chain=True, replays_graphs=True),
)
NAMES = tuple(a.name for a in APPROACHES)
CHAIN = tuple(a.name for a in APPROACHES if a.in_chain)
_BY_NAME = {a.name: a for a in APPROACHES}


def approach(name: str) -> Approach:
    if name not in _BY_NAME:
        raise KeyError(f"unknown approach {name!r}; known: {', '.join(NAMES)}")
    return _BY_NAME[name]


@dataclasses.dataclass(frozen=True)
class Case:
    """One benchmark of ``benchmarks/test_approaches.py``: its id (without the backend) and
    what it runs."""

    id: str
    approach: str
    batch: int | None = None  # None: --batch-size
    variant: str | None = None  # multi_profile: two_profiles or one_profile
    engine_kind: str | None = None  # None: the approach's

    @property
    def kind(self) -> str:
        return self.engine_kind or approach(self.approach).engine_kind


CASES = (
    Case("baseline", "baseline"),
    Case("reuse_buffers", "reuse_buffers"),
    Case("pinned_memory", "pinned_memory"),
    Case("fp16", "fp16"),
    Case("overlap", "overlap"),
    Case("async_postprocess", "async_postprocess"),
    Case("async_postprocess-b1", "async_postprocess", batch=1),
    Case("cuda_graph", "cuda_graph"),
    Case("cuda_graph-b1", "cuda_graph", batch=1),
    Case("gpu_postprocess", "gpu_postprocess"),
    Case("uint8_input", "uint8_input"),
    Case("multi_context", "multi_context"),
    Case("multi_profile-two_profiles", "multi_profile", variant="two_profiles"),
    Case("multi_profile-one_profile", "multi_profile", variant="one_profile", engine_kind="fp16"),
)
SWEEP_APPROACHES = ("baseline", "uint8_input")  # the tutorial's start and the best pipeline


def case_of(test_name: str) -> str:
    """``test_approach[torch-cuda_graph-b1]`` -> ``cuda_graph-b1`` (the id without the backend)."""
    match = re.search(r"\[[a-z]+-([a-z0-9_-]+)\]", test_name)
    return match.group(1) if match else test_name


def approach_of(test_name: str) -> str:
    """``test_approach[torch-cuda_graph-b1]`` -> ``cuda_graph``."""
    return case_of(test_name).split("-")[0]
