"""Operators read from ONNX bytes without the onnx package: the same as onnx's own reading."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from bharnet_ros.core.onnx_graph import OnnxGraphError, operators, unbounded_operators


def save(graph: onnx.GraphProto, path, functions=()) -> str:
    proto = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("lab", 1)],
        functions=list(functions),
    )
    onnx.save(proto, str(path))
    return str(path)


def scalar(name: str) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [])


def onnx_op_types(path) -> set[str]:
    """Every node type in the graph, nested subgraphs included, as the onnx package reads it."""
    found: set[str] = set()
    pending = [onnx.load(str(path)).graph]
    while pending:
        graph = pending.pop()
        for node in graph.node:
            found.add(node.op_type)
            pending.extend(attr.g for attr in node.attribute if attr.type == onnx.AttributeProto.GRAPH)
    return found


def test_an_exported_model_has_the_operators_onnx_lists_and_nothing_unbounded(tiny_model):
    assert {op for _, op in operators(tiny_model)} == onnx_op_types(tiny_model)
    assert unbounded_operators(tiny_model) == []


def test_a_loop_inside_a_branch_and_a_custom_operator_are_found(tmp_path):
    loop = helper.make_node("Loop", ["n", "c"], [], body=helper.make_graph([], "b", [], []))
    looping = helper.make_graph([loop], "then", [], [scalar("y")])
    plain = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "else", [], [scalar("y")])
    nodes = [
        helper.make_node("If", ["c"], ["y"], then_branch=looping, else_branch=plain),
        helper.make_node("Warp", ["y"], ["z"], domain="lab"),
    ]
    graph = helper.make_graph(nodes, "g", [scalar("x"), scalar("n"), scalar("c")], [scalar("z")])
    path = save(graph, tmp_path / "nested.onnx")
    assert operators(path) == {("", "If"), ("", "Loop"), ("", "Identity"), ("lab", "Warp")}
    assert unbounded_operators(path) == ["Loop", "lab::Warp"]


def test_operators_whose_results_chance_decides_are_found(tmp_path):
    """A coin feeding a tensor's size passed the child check half the time, then took 10 GiB in
    the node's own dry run."""
    nodes = [
        helper.make_node("RandomUniformLike", ["x"], ["r"]),
        helper.make_node("Bernoulli", ["r"], ["b"]),
        helper.make_node("Add", ["x", "b"], ["z"]),
    ]
    graph = helper.make_graph(nodes, "g", [scalar("x")], [scalar("z")])
    path = save(graph, tmp_path / "coin.onnx")
    assert unbounded_operators(path) == ["Bernoulli", "RandomUniformLike"]


def test_operators_of_model_local_functions_count(tmp_path):
    scan = helper.make_node("Scan", ["x"], ["y"], body=helper.make_graph([], "b", [], []), num_scan_inputs=1)
    function = helper.make_function("lab", "Sweep", ["x"], ["y"], [scan], [helper.make_opsetid("", 17)])
    graph = helper.make_graph(
        [helper.make_node("Sweep", ["x"], ["y"], domain="lab")], "g", [scalar("x")], [scalar("y")]
    )
    assert unbounded_operators(save(graph, tmp_path / "f.onnx", [function])) == ["Scan", "lab::Sweep"]


@pytest.mark.parametrize("cut", [1, 2, 7, 40])
def test_cut_off_or_foreign_bytes_are_an_error_not_a_hang(tiny_model, tmp_path, cut):
    data = tiny_model.read_bytes()
    broken = tmp_path / "cut.onnx"
    broken.write_bytes(data[: len(data) - cut] if cut < 40 else b"\xff" * cut)
    with pytest.raises(OnnxGraphError):
        operators(broken)


def test_a_file_of_millions_of_empty_nodes_is_refused_within_the_field_budget():
    """A 100 MB file of 2-byte nodes held the recognizer's executor 40 s in this walk."""
    from bharnet_ros.core.onnx_graph import MOST_FIELDS

    graph = b"\x0a\x00" * (MOST_FIELDS + 1)  # field 1 (node), length 0
    size, length = len(graph), b""
    while True:  # the graph's length as a varint
        byte, size = size & 0x7F, size >> 7
        length += bytes([byte | (0x80 if size else 0)])
        if not size:
            break
    with pytest.raises(OnnxGraphError, match=f"more than {MOST_FIELDS} protobuf fields"):
        operators(b"\x3a" + length + graph)  # field 7 (graph) of the model
