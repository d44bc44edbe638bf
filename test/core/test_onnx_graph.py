"""Operators read from ONNX bytes without the onnx package: the same as onnx's own reading."""

from __future__ import annotations

import struct

import onnx
import pytest
from onnx import TensorProto, helper
from onnx.external_data_helper import set_external_data

from bharnet_ros.core.onnx_graph import OnnxGraphError, external_tensors, operators, unbounded_operators


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


@pytest.mark.parametrize("where", ["initializer", "constant", "nested_constant", "sparse"])
def test_tensors_whose_data_lies_in_a_side_file_are_counted_wherever_they_are(tmp_path, where):
    """ONNX Runtime read a side file from the working folder when the model came as bytes."""
    weights = helper.make_tensor("w", TensorProto.FLOAT, [4], struct.pack("<4f", 1, 2, 3, 4), raw=True)
    constant = helper.make_node("Constant", [], ["w"], value=weights)
    nested = helper.make_graph([constant], "then", [], [scalar("w")])
    branch = helper.make_node("If", ["c"], ["w"], then_branch=nested, else_branch=nested)
    sparse = helper.make_sparse_tensor(
        weights,
        helper.make_tensor("i", TensorProto.INT64, [4], struct.pack("<4q", 0, 1, 2, 3), raw=True),
        [4],
    )
    nodes = {"initializer": [], "constant": [constant], "nested_constant": [branch], "sparse": []}[where]
    graph = helper.make_graph(
        [*nodes, helper.make_node("Identity", ["w"], ["y"])], "g", [scalar("c")], [scalar("y")],
        initializer=[weights] if where == "initializer" else [],
        sparse_initializer=[sparse] if where == "sparse" else [],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert external_tensors(model.SerializeToString()) == 0
    if where == "sparse":  # onnx's saving leaves sparse tensors in the file
        set_external_data(model.graph.sparse_initializer[0].values, "w.bin")
        model.graph.sparse_initializer[0].values.data_location = TensorProto.EXTERNAL
    path = str(tmp_path / "side.onnx")
    onnx.save(
        model, path, save_as_external_data=True, location="w.bin", size_threshold=0, convert_attribute=True
    )
    assert external_tensors(path) == (2 if where == "nested_constant" else 1)  # in both branches
