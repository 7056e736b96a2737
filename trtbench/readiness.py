"""Will TensorRT's ONNX parser take this graph? Checked on the CPU, before any engine build.

The rules are onnx-tensorrt's, kept as data in ``trtbench/data/onnx_tensorrt_operators.toml``
(its ``docs/operators.md``, with the commit it came from):

* every node's operator is in the importer's table, from the default ONNX domain, in an
  opset the importer reads;
* the data type a node computes in (its inputs and outputs of the operator's main type
  constraint; both sides of a Cast) is one the table lists for that operator, so INT64
  only where TensorRT accepts it, and never DOUBLE;
* UINT8 only at the network's edge: a UINT8 network input feeds Cast nodes directly, and
  a UINT8 tensor a node makes is a network output (the importer refuses any other).

``problems`` lists what breaks a rule; ``check`` raises the first as one line. Judging
code: it reads ONNX with ``onnx`` alone (no torch, no TensorRT).
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import onnx

TABLE_PATH = Path(__file__).parent / "data" / "onnx_tensorrt_operators.toml"
DEFAULT_DOMAINS = ("", "ai.onnx")
# ONNX element types by the names docs/operators.md uses
TYPE_NAMES = {
    onnx.TensorProto.FLOAT: "FP32",
    onnx.TensorProto.FLOAT16: "FP16",
    onnx.TensorProto.BFLOAT16: "BF16",
    onnx.TensorProto.DOUBLE: "DOUBLE",
    onnx.TensorProto.INT8: "INT8",
    onnx.TensorProto.UINT8: "UINT8",
    onnx.TensorProto.INT32: "INT32",
    onnx.TensorProto.INT64: "INT64",
    onnx.TensorProto.BOOL: "BOOL",
    onnx.TensorProto.FLOAT8E4M3FN: "FP8",
    onnx.TensorProto.INT4: "INT4",
}
UINT8_ALLOWED = "a UINT8 network input feeds Cast nodes directly, a UINT8 tensor made by a node is a network output"


class NotReadyForTensorRT(ValueError):
    """A graph TensorRT's ONNX parser would refuse; the message is one line."""


@dataclasses.dataclass(frozen=True)
class Problem:
    node: str  # the node's name (or its first output where it has none)
    op: str
    what: str  # what is wrong and what is allowed

    def line(self) -> str:
        return f"node {self.node!r} ({self.op}): {self.what}"


@functools.lru_cache(maxsize=1)
def table() -> dict[str, Any]:
    with open(TABLE_PATH, "rb") as f:
        return tomllib.load(f)


def source() -> str:
    """Where the rules come from, for messages."""
    s = table()["source"]
    return f"{s['repository']} {s['path']} at {s['tag']}"


def _load(model: onnx.ModelProto | str | Path) -> onnx.ModelProto:
    if isinstance(model, onnx.ModelProto):
        return model
    return onnx.load(str(model), load_external_data=False)  # the graph, not its weights


def _nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node, those of subgraphs (If, Loop, Scan) included."""
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            for sub in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs):
                yield from _nodes(sub)


def _types(model: onnx.ModelProto) -> dict[str, int]:
    """Tensor name -> ONNX element type, from the graph and ONNX's shape inference."""
    try:
        graph = onnx.shape_inference.infer_shapes(model, strict_mode=False).graph
    except onnx.shape_inference.InferenceError:  # e.g. an operator of an unknown domain: judge what is declared
        graph = model.graph
    found = {t.name: t.data_type for t in graph.initializer}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        if value.type.HasField("tensor_type") and value.type.tensor_type.elem_type:
            found[value.name] = value.type.tensor_type.elem_type
    for node in _nodes(graph):
        if node.op_type == "Constant":  # shape inference leaves some constants out
            for attribute in node.attribute:
                if attribute.name == "value":
                    found.setdefault(node.output[0], attribute.t.data_type)
    return found


def _name(node: onnx.NodeProto) -> str:
    return node.name or (node.output[0] if node.output else node.op_type)


def _typed_tensors(node: onnx.NodeProto, opset: int) -> list[str]:
    """The node's tensors of its main type constraint (that of its first input), whose data
    type the table's "Supported Types" column speaks of; both sides of a Cast. Shape and index
    tensors (Reshape's shape, Gather's indices, TopK's K) are left out."""
    if node.op_type in ("Cast", "CastLike"):
        return [*node.input[:1], *node.output[:1]]
    try:
        schema = onnx.defs.get_schema(node.op_type, opset, "")
    except onnx.defs.SchemaError:
        return [*node.input[:1]]
    formal_in, formal_out = list(schema.inputs), list(schema.outputs)
    if not formal_in or not node.input:
        return []
    main = formal_in[0].type_str

    def of(names: Any, formal: list[Any]) -> list[str]:
        picked = []
        for index, name in enumerate(names):
            param = formal[min(index, len(formal) - 1)]  # variadic: the last formal repeats
            if name and param.type_str == main:
                picked.append(name)
        return picked

    return of(node.input, formal_in) + of(node.output, formal_out)


def problems(model: onnx.ModelProto | str | Path) -> list[Problem]:
    """Every node that breaks a rule of TensorRT's ONNX parser (see the module's docstring)."""
    proto = _load(model)
    rules, operators = table()["rules"], table()["operators"]
    unsupported = set(table()["unsupported"]["operators"])
    found: list[Problem] = []
    opset = next((o.version for o in proto.opset_import if o.domain in DEFAULT_DOMAINS), None)
    if opset is None or not rules["opset_min"] <= opset <= rules["opset_max"]:
        found.append(
            Problem(
                "(model)",
                "opset_import",
                f"default-domain opset {opset}; allowed: opset "
                f"{rules['opset_min']} to {rules['opset_max']} ({source()})",
            )
        )
        opset = opset or rules["opset_max"]
    types = _types(proto)
    graph_inputs = {i.name for i in proto.graph.input}
    graph_outputs = {o.name for o in proto.graph.output}
    for node in _nodes(proto.graph):
        problem = _node_problem(node, opset, types, graph_inputs, graph_outputs, operators, unsupported)
        if problem is not None:
            found.append(Problem(_name(node), node.op_type, problem))
    return found


def _node_problem(
    node: onnx.NodeProto,
    opset: int,
    types: dict[str, int],
    graph_inputs: set[str],
    graph_outputs: set[str],
    operators: dict[str, list[str]],
    unsupported: set[str],
) -> str | None:
    if node.domain not in DEFAULT_DOMAINS:
        return (
            f"operator of domain {node.domain!r} (a plugin); allowed: the default ONNX domain, the suite "
            "registers no plugins"
        )
    if node.op_type not in operators:
        why = "listed as not supported by" if node.op_type in unsupported else "not in the operator table of"
        return f"{why} TensorRT's ONNX parser; allowed: the {len(operators)} operators of {source()}"
    for name in node.input:
        if name in graph_inputs and types.get(name) == onnx.TensorProto.UINT8 and node.op_type != "Cast":
            return f"reads the UINT8 network input {name!r}; allowed: {UINT8_ALLOWED} (NVIDIA/TensorRT#3985)"
    for name in node.output:
        if types.get(name) == onnx.TensorProto.UINT8 and name not in graph_outputs:
            return f"makes the UINT8 tensor {name!r}, which is not a network output; allowed: {UINT8_ALLOWED}"
    allowed = operators[node.op_type]
    for name in _typed_tensors(node, opset):
        kind = types.get(name)
        if kind is None:
            continue  # unknown to shape inference: nothing to judge
        type_name = TYPE_NAMES.get(kind, onnx.TensorProto.DataType.Name(kind))
        if type_name not in allowed:
            return f"tensor {name!r} is {type_name}; allowed for {node.op_type}: {', '.join(allowed)} ({source()})"
    return None


def check(model: onnx.ModelProto | str | Path, what: str | None = None) -> None:
    """Raise :class:`NotReadyForTensorRT` with one line if TensorRT's ONNX parser would refuse
    the graph: the first offending node, its operator and what is allowed."""
    found = problems(model)
    if found:
        name = what or (Path(model).name if isinstance(model, (str, Path)) else "ONNX graph")
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise NotReadyForTensorRT(f"{name} is not ready for TensorRT: {found[0].line()}{more}")
