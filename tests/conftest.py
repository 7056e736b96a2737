"""Shared CPU fixtures: the default model, built and calibrated once per session."""

from pathlib import Path

import numpy as np
import pytest

from tests.fake_cuda import FakeRuntime
from trtbench import model as m
from trtbench.gpu import cuda


@pytest.fixture(scope="session")
def spec():
    return m.model_spec("resnet18")


@pytest.fixture(scope="session")
def net(spec, tmp_path_factory):
    """The seeded, calibrated ResNet-18 (as the benchmarks build it), on the CPU."""
    return m.build_model(spec, cache_dir=tmp_path_factory.mktemp("models"))


@pytest.fixture
def runtime(monkeypatch):
    """The CUDA test double in place of cuda.bindings' runtime, for one test."""
    fake = FakeRuntime()
    monkeypatch.setattr(cuda, "cudart", fake)
    return fake


def reference_data(graphs: dict[str, Path], batch: int, batches: int) -> dict[str, tuple[list[np.ndarray], list]]:
    """Per graph variant: seeded batches (uint8 images, or their normalised floats) and ONNX
    Runtime's outputs of ``graphs[variant]`` on them."""
    images = [m.make_images(10088, i, batch) for i in range(batches)]
    floats = [m.normalize(x) for x in images]
    out = {}
    for variant in m.GRAPH_VARIANTS:
        inputs = images if variant == "uint8" else floats
        out[variant] = (inputs, m.run_onnxruntime(graphs[variant], inputs))
    return out
