"""Which operators an ONNX file's graph uses, read from its protobuf bytes (no ``onnx`` package).

The robot runs models with ONNX Runtime alone, and a model file is an input like any other: before
the recognizer runs a graph it checks that the graph cannot run for ever. Exported BHaRNet graphs
are plain feed-forward graphs; a ``Loop`` or ``Scan`` with a huge trip count (a few hundred bytes)
would hang the dry run at configure, and with it the node. Only the fields that can hold nodes are
walked (the main graph, nested subgraphs of attributes, and model-local functions); weights are
skipped without being copied.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

# Field numbers of onnx.proto (ModelProto, GraphProto, NodeProto, AttributeProto, FunctionProto,
# TrainingInfoProto, SparseTensorProto, TensorProto).
MODEL_GRAPH, MODEL_TRAINING_INFO, MODEL_FUNCTIONS = 7, 20, 25
GRAPH_NODE, GRAPH_INITIALIZER, GRAPH_SPARSE_INITIALIZER = 1, 5, 15
NODE_OP_TYPE, NODE_ATTRIBUTE, NODE_DOMAIN = 4, 5, 7
ATTRIBUTE_TENSOR, ATTRIBUTE_GRAPH, ATTRIBUTE_TENSORS, ATTRIBUTE_GRAPHS = 5, 6, 10, 11
ATTRIBUTE_SPARSE_TENSOR, ATTRIBUTE_SPARSE_TENSORS = 22, 23
FUNCTION_NODE = 7
TRAINING_INITIALIZATION, TRAINING_ALGORITHM = 1, 2
SPARSE_VALUES, SPARSE_INDICES = 1, 2
TENSOR_EXTERNAL_DATA, TENSOR_DATA_LOCATION = 13, 14
# What each kind of message holds that can hold a tensor, for :func:`external_tensors`.
_HOLDING_TENSORS = {
    "model": {MODEL_GRAPH: "graph", MODEL_TRAINING_INFO: "training", MODEL_FUNCTIONS: "function"},
    "training": {TRAINING_INITIALIZATION: "graph", TRAINING_ALGORITHM: "graph"},
    "graph": {GRAPH_NODE: "node", GRAPH_INITIALIZER: "tensor", GRAPH_SPARSE_INITIALIZER: "sparse"},
    "function": {FUNCTION_NODE: "node"},
    "node": {NODE_ATTRIBUTE: "attribute"},
    "attribute": {
        ATTRIBUTE_TENSOR: "tensor",
        ATTRIBUTE_TENSORS: "tensor",
        ATTRIBUTE_GRAPH: "graph",
        ATTRIBUTE_GRAPHS: "graph",
        ATTRIBUTE_SPARSE_TENSOR: "sparse",
        ATTRIBUTE_SPARSE_TENSORS: "sparse",
    },  # fmt: skip
    "sparse": {SPARSE_VALUES: "tensor", SPARSE_INDICES: "tensor"},
}
VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5
# Operators whose running time the graph's own data decides, or whose results chance decides (a
# check in a child process would then have seen another run than the node's: a coin feeding a
# tensor's size passes the child half the time, then takes gigabytes in the node), and the domains
# of standard operators.
UNBOUNDED_OPS = frozenset(
    {"Loop", "Scan", "SequenceMap"}
    | {"RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike", "Multinomial", "Bernoulli"}
)
STANDARD_DOMAINS = frozenset({"", "ai.onnx"})
# An exported recognizer has a few thousand nodes and fields around them; walking a million
# fields takes about a second here, and a file of millions of empty nodes must not hold a node.
MOST_FIELDS = 1_000_000


class OnnxGraphError(ValueError):
    """The bytes are not a well-formed ONNX protobuf."""


def operators(source: str | Path | bytes) -> set[tuple[str, str]]:
    """Every ``(domain, op_type)`` in the model's graphs, nested subgraphs and local functions;
    ``source`` is the file or its bytes."""
    model = memoryview(source if isinstance(source, bytes) else Path(source).read_bytes())
    found: set[tuple[str, str]] = set()
    budget = [MOST_FIELDS]
    pending = list(_messages(model, {MODEL_GRAPH: "graph", MODEL_FUNCTIONS: "function"}, budget))
    while pending:  # a stack, not recursion: nesting depth is the file's choice
        kind, message = pending.pop()
        node_field = GRAPH_NODE if kind == "graph" else FUNCTION_NODE
        for _, node in _messages(message, {node_field: "node"}, budget):
            found.add(_node_operator(node, pending, budget))
    return found


def unbounded_operators(source: str | Path | bytes) -> list[str]:
    """The operators of the file that could run without end or that ONNX Runtime would take from
    a custom library, as ``domain::op`` or ``op``, sorted; empty for a feed-forward graph."""
    return sorted(
        op if domain in STANDARD_DOMAINS else f"{domain}::{op}"
        for domain, op in operators(source)
        if op in UNBOUNDED_OPS or domain not in STANDARD_DOMAINS
    )


def external_tensors(source: str | Path | bytes) -> int:
    """How many tensors of the model keep their data in a side file (ONNX external data).

    ONNX Runtime reads such a file relative to the working folder when a model is loaded from its
    bytes, and anew at each load: a check of the model would not have seen what the node loads.
    """
    model = memoryview(source if isinstance(source, bytes) else Path(source).read_bytes())
    budget, found = [MOST_FIELDS], 0
    pending: list[tuple[str, memoryview]] = [("model", model)]
    while pending:  # a stack, not recursion: nesting depth is the file's choice
        kind, message = pending.pop()
        if kind == "tensor":
            found += _is_external(message, budget)
        else:
            pending.extend(_messages(message, _HOLDING_TENSORS[kind], budget))
    return found


def _is_external(tensor: memoryview, budget: list[int]) -> bool:
    """Whether a TensorProto names external data or says its data lies outside the file."""
    for number, wire, value in _fields(tensor, budget):
        if number == TENSOR_EXTERNAL_DATA and wire == LENGTH_DELIMITED:
            return True
        if number == TENSOR_DATA_LOCATION and wire == VARINT and _varint(value, 0)[0] != 0:
            return True
    return False


def _node_operator(
    node: memoryview, pending: list[tuple[str, memoryview]], budget: list[int]
) -> tuple[str, str]:
    """The node's (domain, op_type); the subgraphs of its attributes go onto ``pending``."""
    op_type = domain = ""
    for number, wire, value in _fields(node, budget):
        if wire != LENGTH_DELIMITED:
            continue
        if number == NODE_OP_TYPE:
            op_type = _text(value)
        elif number == NODE_DOMAIN:
            domain = _text(value)
        elif number == NODE_ATTRIBUTE:
            pending.extend(_messages(value, {ATTRIBUTE_GRAPH: "graph", ATTRIBUTE_GRAPHS: "graph"}, budget))
    return domain, op_type


def _messages(data: memoryview, kinds: dict[int, str], budget: list[int]) -> Iterator[tuple[str, memoryview]]:
    """The embedded messages of ``data`` whose field numbers ``kinds`` names, with their kind."""
    for number, wire, value in _fields(data, budget):
        if number in kinds and wire == LENGTH_DELIMITED:
            yield kinds[number], value


def _fields(data: memoryview, budget: list[int]) -> Iterator[tuple[int, int, memoryview]]:
    """(field number, wire type, payload) of each field; a varint's payload is its encoded bytes,
    a fixed one comes empty. Each field spends one of ``budget[0]``; OnnxGraphError when none is left."""
    position = 0
    while position < len(data):
        budget[0] -= 1
        if budget[0] < 0:
            raise OnnxGraphError(
                f"more than {MOST_FIELDS} protobuf fields around its nodes, far more than a recognizer has"
            )
        key, position = _varint(data, position)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            start = position
            _, position = _varint(data, position)
            value = data[start:position]
        elif wire in (FIXED64, FIXED32):
            position += 8 if wire == FIXED64 else 4
            value = data[0:0]
        elif wire == LENGTH_DELIMITED:
            length, position = _varint(data, position)
            value, position = data[position : position + length], position + length
        else:
            raise OnnxGraphError(f"unsupported protobuf wire type {wire}")
        if position > len(data):
            raise OnnxGraphError("a field runs past the end of its message")
        yield number, wire, value


def _varint(data: memoryview, position: int) -> tuple[int, int]:
    """The base-128 integer at ``position`` and the position after it."""
    result = shift = 0
    while position < len(data) and shift < 70:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position
        shift += 7
    raise OnnxGraphError("a protobuf integer is cut off or too long")


def _text(value: memoryview) -> str:
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        raise OnnxGraphError("an operator name is not UTF-8 text") from None
