"""The approaches, in the tutorial's order, then the two beyond it (each stacks on the one before it)."""

from __future__ import annotations

import importlib
from typing import Any

# Stable names: they are the test ids and the keys saved runs are compared by.
NAMES = (
    "baseline",
    "reuse_buffers",
    "pinned_memory",
    "fp16",
    "overlap",
    "async_postprocess",
    "cuda_graph",
    "multi_context",
    "multi_profile",
    # beyond the tutorial
    "gpu_postprocess",
    "uint8_input",
)


def approach_class(name: str) -> Any:
    if name not in NAMES:
        raise KeyError(f"unknown approach {name!r}; known: {', '.join(NAMES)}")
    return importlib.import_module(f"trtbench.gpu.approaches.{name}").Approach
