"""The TensorRT-readiness check of ONNX graphs (trtbench.readiness), on the CPU: every graph
variant of ResNet-18 and the graphs TensorRT builds of six other torchvision classifiers pass;
hand-made graphs that break each rule are refused in one line naming the node, its operator
and what is allowed; the check runs before any engine is built."""

from __future__ import annotations

import functools
import types
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tests import trt_double
from tests.conftest import transpose_before_cast
from trtbench import catalogue, graphs, model, readiness

# small classifiers of other families (grouped and depthwise convolutions, channel shuffle,
# squeeze-excitation, HardSwish, inverted residuals, no linear head)
OTHER_MODELS = (
    "mobilenet_v3_small",
    "squeezenet1_0",
    "efficientnet_b0",
    "shufflenet_v2_x0_5",
    "regnet_x_400mf",
    "mnasnet0_5",
)
# what TensorRT builds engines from (fixtures/engines.py): fp32 logits, and fp16 for the rest
BUILT = [("logits", False), ("logits", True), ("postprocess", True), ("uint8", True)]
ALL_VARIANTS = [(v, fp16) for v in catalogue.GRAPH_VARIANTS for fp16 in (False, True)]


@pytest.fixture(scope="module")
def exported(net, tmp_path_factory):
    """ONNX export of (model, variant, fp16), made once per test session: ResNet-18 with the
    suite's calibrated weights, the others seeded (weights do not change the graph)."""
    import torch
    import torchvision

    folder = tmp_path_factory.mktemp("readiness")

    @functools.cache
    def classifier(name):
        if name == "resnet18":
            return net
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return torchvision.models.get_model(name, weights=None).eval()

    @functools.cache
    def get(name, variant, fp16):
        path = folder / f"{name}-{variant}{'-fp16' if fp16 else ''}.onnx"
        return graphs.export_onnx(classifier(name), model.model_spec(name), path, variant, fp16)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tracing a batch of one: more threads only contend on a shared CI machine
    try:
        yield get
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("variant,fp16", ALL_VARIANTS, ids=[f"{v}-{'fp16' if h else 'fp32'}" for v, h in ALL_VARIANTS])
def test_every_graph_variant_of_resnet18_is_ready(exported, variant, fp16):
    assert readiness.problems(exported("resnet18", variant, fp16)) == []


@pytest.mark.parametrize("name", OTHER_MODELS)
def test_the_built_graphs_of_other_classifiers_are_ready(exported, name):
    found = {
        f"{v}-{'fp16' if h else 'fp32'}": [p.line() for p in readiness.problems(exported(name, v, h))] for v, h in BUILT
    }
    assert found == {k: [] for k in found}


def test_the_uint8_graph_casts_its_input_first(exported):
    """Finding 1: the uint8 input feeds a Cast directly (onnx-tensorrt takes UINT8 only at the
    network's edge); the graph used to start Transpose(UINT8)."""
    graph = onnx.load(str(exported("resnet18", "uint8", True))).graph
    readers = [n for n in graph.node if catalogue.INPUT_NAME in n.input]
    assert [n.op_type for n in readers] == ["Cast"]


def test_the_uint8_graph_of_the_old_export_is_refused(exported):
    old = transpose_before_cast(onnx.load(str(exported("resnet18", "uint8", True))))
    [problem] = readiness.problems(old)
    assert problem.op == "Transpose" and "reads the UINT8 network input 'input0'" in problem.what
    with pytest.raises(
        readiness.NotReadyForTensorRT,
        match=r"^uint8\.onnx is not ready for TensorRT: node '.*' "
        r"\(Transpose\): reads the UINT8 network input 'input0'; "
        r"allowed: a UINT8 network input feeds Cast nodes",
    ):
        readiness.check(old, "uint8.onnx")


# ---------------------------------------------------------------- hand-made graphs, one rule each


def graph(nodes, inputs, outputs, opset=17, initializers=()):
    made = helper.make_model(
        helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers)),
        opset_imports=[helper.make_opsetid("", opset)],
    )
    return made


def tensor(name, kind, shape=(1, 4)):
    return helper.make_tensor_value_info(name, kind, list(shape))


BROKEN = {
    "uint8 input into a Transpose": (
        graph(
            [
                helper.make_node("Transpose", ["x"], ["t"], name="tr", perm=[1, 0]),
                helper.make_node("Cast", ["t"], ["y"], name="cast", to=TensorProto.FLOAT),
            ],
            [tensor("x", TensorProto.UINT8)],
            [tensor("y", TensorProto.FLOAT, (4, 1))],
        ),
        (
            "node 'tr' (Transpose): reads the UINT8 network input 'x'; allowed: a UINT8 network input feeds Cast nodes "
            "directly, a UINT8 tensor made by a node is a network output (NVIDIA/TensorRT#3985)"
        ),
    ),
    "uint8 intermediate tensor": (
        graph(
            [
                helper.make_node("Cast", ["x"], ["u"], name="to_u8", to=TensorProto.UINT8),
                helper.make_node("Cast", ["u"], ["y"], name="back", to=TensorProto.FLOAT),
            ],
            [tensor("x", TensorProto.FLOAT)],
            [tensor("y", TensorProto.FLOAT)],
        ),
        (
            "node 'to_u8' (Cast): makes the UINT8 tensor 'u', which is not a network output; allowed: a UINT8 network "
            "input feeds Cast nodes directly, a UINT8 tensor made by a node is a network output"
        ),
    ),
    "operator listed as unsupported": (
        graph(
            [helper.make_node("Det", ["x"], ["y"], name="det")],
            [tensor("x", TensorProto.FLOAT, (2, 2))],
            [tensor("y", TensorProto.FLOAT, ())],
        ),
        (
            "node 'det' (Det): listed as not supported by TensorRT's ONNX parser; allowed: the 150 operators of "
            "onnx/onnx-tensorrt docs/operators.md at release/10.1-GA"
        ),
    ),
    "operator missing from the table": (
        graph(
            [helper.make_node("Swish", ["x"], ["y"], name="swish")],
            [tensor("x", TensorProto.FLOAT)],
            [tensor("y", TensorProto.FLOAT)],
        ),
        "node 'swish' (Swish): not in the operator table of TensorRT's ONNX parser; allowed: the 150 operators of",
    ),
    "operator of another domain": (
        graph(
            [helper.make_node("MyPlugin", ["x"], ["y"], name="plugin", domain="com.example")],
            [tensor("x", TensorProto.FLOAT)],
            [tensor("y", TensorProto.FLOAT)],
        ),
        "node 'plugin' (MyPlugin): operator of domain 'com.example' (a plugin); allowed: the default ONNX domain",
    ),
    "int64 where TensorRT does not take it": (
        graph(
            [helper.make_node("MatMul", ["a", "b"], ["y"], name="mm")],
            [tensor("a", TensorProto.INT64, (2, 2)), tensor("b", TensorProto.INT64, (2, 2))],
            [tensor("y", TensorProto.INT64, (2, 2))],
        ),
        "node 'mm' (MatMul): tensor 'a' is INT64; allowed for MatMul: FP32, FP16, BF16 (onnx/onnx-tensorrt",
    ),
    "double tensor": (
        graph(
            [helper.make_node("Add", ["a", "b"], ["y"], name="add")],
            [tensor("a", TensorProto.DOUBLE), tensor("b", TensorProto.DOUBLE)],
            [tensor("y", TensorProto.DOUBLE)],
        ),
        "node 'add' (Add): tensor 'a' is DOUBLE; allowed for Add: FP32, FP16, BF16, INT32, INT64",
    ),
    "opset beyond the parser's": (
        graph(
            [helper.make_node("Relu", ["x"], ["y"], name="relu")],
            [tensor("x", TensorProto.FLOAT)],
            [tensor("y", TensorProto.FLOAT)],
            opset=21,
        ),
        "node '(model)' (opset_import): default-domain opset 21; allowed: opset 9 to 20",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_graph_that_breaks_a_rule_is_refused_in_one_line(case):
    model, expected = BROKEN[case]
    with pytest.raises(readiness.NotReadyForTensorRT) as caught:
        readiness.check(model, "g.onnx")
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"g.onnx is not ready for TensorRT: {expected}"), message


def test_what_the_rules_allow():
    ok = {
        "uint8 input into a Cast, uint8 output from a Cast": graph(
            [
                helper.make_node("Cast", ["x"], ["f"], to=TensorProto.FLOAT),
                helper.make_node("Relu", ["f"], ["r"]),
                helper.make_node("Cast", ["r"], ["y"], to=TensorProto.UINT8),
            ],
            [tensor("x", TensorProto.UINT8)],
            [tensor("y", TensorProto.UINT8)],
        ),
        "int64 shape and index tensors": graph(
            [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Reshape", ["x", "s"], ["y"])],
            [tensor("x", TensorProto.FLOAT)],
            [tensor("y", TensorProto.FLOAT)],
        ),
        "int64 data where the table lists it": graph(
            [helper.make_node("Add", ["a", "b"], ["y"])],
            [tensor("a", TensorProto.INT64), tensor("b", TensorProto.INT64)],
            [tensor("y", TensorProto.INT64)],
        ),
        "TopK's int64 indices": graph(
            [helper.make_node("TopK", ["x", "k"], ["v", "i"])],
            [tensor("x", TensorProto.FLOAT)],
            [tensor("v", TensorProto.FLOAT, (1, 2)), tensor("i", TensorProto.INT64, (1, 2))],
            initializers=[helper.make_tensor("k", TensorProto.INT64, [1], [2])],
        ),
    }
    assert {name: readiness.problems(g) for name, g in ok.items()} == {name: [] for name in ok}


def test_the_table_names_its_source_and_versions():
    source = readiness.table()["source"]
    assert source["repository"] == "onnx/onnx-tensorrt" and len(source["commit"]) == 40
    assert source["commit"] in source["url"] and source["applied_to_tensorrt"] == ["10.13", "11.1"]
    operators = readiness.table()["operators"]
    assert "UINT8" in operators["Cast"] and "UINT8" not in operators["Transpose"] and "INT64" in operators["TopK"]
    assert not set(operators) & set(readiness.table()["unsupported"]["operators"])


def test_a_graph_that_is_not_ready_is_refused_before_any_engine_is_built(exported, runtime, tmp_path):
    """fixtures/engines.py checks the graph before it asks the cache for an engine."""
    from fixtures.engines import build_tensorrt_engine

    old = tmp_path / "uint8-old.onnx"
    onnx.save(transpose_before_cast(onnx.load(str(exported("resnet18", "uint8", True)))), str(old))
    options = types.SimpleNamespace(
        batch_size=8, max_aux_streams=None, batch_sweep=(), engine_cache_dir=tmp_path / "e", rebuild_engines=False
    )
    session = types.SimpleNamespace(options=options, report_line=print)
    refused = pytest.raises(
        readiness.NotReadyForTensorRT,
        match=r"^uint8-old\.onnx is not ready for TensorRT: node .* "
        r"\(Transpose\)",
    )
    with trt_double.backend_on(trt_double.OrtOnFakeCuda(runtime), "10.x"), refused:
        build_tensorrt_engine("fp16_uint8", session, model.model_spec("resnet18"), lambda v, fp16: old)
    assert not (tmp_path / "e").exists()  # no cache folder, no engine


def test_readiness_imports_neither_torch_nor_the_gpu_code():
    import subprocess
    import sys

    code = (
        "import sys, trtbench.readiness; bad = [k for k in sys.modules if k == 'torch' or "
        "k.startswith('trtbench.gpu')]; print(bad); sys.exit(1 if bad else 0)"
    )
    root = Path(__file__).parents[1]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(root), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert np.__name__  # numpy is allowed
