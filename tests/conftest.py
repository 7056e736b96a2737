"""Shared CPU fixtures: the default model, built and calibrated once per session, and the
CUDA test double. torch is imported inside the fixtures, so that a test file that needs none
of them starts fast."""

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def spec():
    from trtbench.model import model_spec

    return model_spec("resnet18")


@pytest.fixture(scope="session")
def net(spec, tmp_path_factory):
    """The seeded, calibrated ResNet-18 (as the benchmarks build it), on the CPU."""
    from trtbench.model import build_model

    return build_model(spec, cache_dir=tmp_path_factory.mktemp("models"))


@pytest.fixture
def runtime(monkeypatch):
    """The CUDA test double in place of cuda.bindings' runtime, for one test."""
    from tests.fake_cuda import FakeRuntime
    from trtbench.gpu import cuda

    fake = FakeRuntime()
    monkeypatch.setattr(cuda, "cudart", fake)
    return fake


def reference_data(graphs: dict[str, Path], batch: int, batches: int) -> dict[str, tuple[list[np.ndarray], list]]:
    """Per graph variant: seeded batches (uint8 images, or their normalised floats) and ONNX
    Runtime's outputs of ``graphs[variant]`` on them."""
    from trtbench.catalogue import GRAPH_VARIANTS
    from trtbench.images import make_images, normalize
    from trtbench.reference import run_onnxruntime

    images = [make_images(10088, i, batch) for i in range(batches)]
    floats = [normalize(x) for x in images]
    out = {}
    for variant in GRAPH_VARIANTS:
        inputs = images if variant == "uint8" else floats
        out[variant] = (inputs, run_onnxruntime(graphs[variant], inputs))
    return out


def transpose_before_cast(model):
    """The old uint8 graph: Transpose(UINT8 input) -> Cast, instead of Cast -> Transpose."""
    from onnx import helper

    from trtbench.catalogue import INPUT_NAME

    nodes = list(model.graph.node)
    cast = next(n for n in nodes if INPUT_NAME in n.input)
    transpose = next(n for n in nodes if cast.output[0] in n.input)
    assert transpose.op_type == "Transpose"
    transposed, cast_out = "input0_transposed", transpose.output[0]
    new_transpose = helper.make_node(
        "Transpose",
        [INPUT_NAME],
        [transposed],
        name=transpose.name,
        perm=list(next(a for a in transpose.attribute if a.name == "perm").ints),
    )
    new_cast = helper.make_node(
        "Cast", [transposed], [cast_out], name=cast.name, to=next(a for a in cast.attribute if a.name == "to").i
    )
    index = nodes.index(cast)
    rest = [n for n in nodes if n is not cast and n is not transpose]
    del model.graph.node[:]
    model.graph.node.extend(rest[:index] + [new_transpose, new_cast] + rest[index:])
    return model
