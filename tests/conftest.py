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


def transpose_before_cast(model):
    """The old uint8 graph: Transpose(UINT8 input) -> Cast, instead of Cast -> Transpose."""
    from onnx import helper

    nodes = list(model.graph.node)
    cast = next(n for n in nodes if m.INPUT_NAME in n.input)
    transpose = next(n for n in nodes if cast.output[0] in n.input)
    assert transpose.op_type == "Transpose"
    transposed, cast_out = "input0_transposed", transpose.output[0]
    new_transpose = helper.make_node("Transpose", [m.INPUT_NAME], [transposed], name=transpose.name,
                                     perm=list(next(a for a in transpose.attribute if a.name == "perm").ints))
    new_cast = helper.make_node("Cast", [transposed], [cast_out], name=cast.name,
                                to=next(a for a in cast.attribute if a.name == "to").i)
    index = nodes.index(cast)
    rest = [n for n in nodes if n is not cast and n is not transpose]
    del model.graph.node[:]
    model.graph.node.extend(rest[:index] + [new_transpose, new_cast] + rest[index:])
    return model
