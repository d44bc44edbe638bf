"""Parameter files read offline as rcl reads them for the nodes, checked against rcl itself."""

from __future__ import annotations

import math

import pytest

from bharnet_ros.core.params_file import ParamsFileError, dump_params_file, node_parameters, read_params_file

VALUES = [
    *("y n Y N yes No ON off true FALSE yEs oN tRue".split()),
    *("010 08 0777 0778 -010 0x1F +0x10 0o7 0b1 +5 -0 00 1_000 12abc 0x".split()),
    *("1e5 5e-1 1.0e-2 .5 5. 0. 0e0 +.5 -.5e3 1E5 1.5E+3 09.5 1e e5 0.5.5 . + e".split()),
    *("inf -inf infinity INFINITY nan NAN nan(12) .inf -.Inf +.INF .nan .NaN -.NaN +.NAN".split()),
    *("0x1p3 -0x1p3 0x1.8 1e400 -1e400 1e-310 1e-400 1.8e308 1.7976931348623157e308".split()),
    *("9223372036854775807 9223372036854775808 -9223372036854775808 -9223372036854775809".split()),
    *("0x7FFFFFFFFFFFFFFF 0x8000000000000000 ~ null 1:30 2001-12-14 yes!".split()),
    *("0x1p1024 0x1p-1074 0x1.8p-1075 0x1p-99999 1e-99999 -0x0p9 0x.0".split()),
    *("!!bool n|!!float 1|!!int 1.5|!!null 3".split("|")),
    "'5'",
    '"yes"',
    "'010'",
    "!!str 5",
    "[y, n]",
    "[1, 2]",
]


def rcl_parameters(path, node: str, namespace: str = "/") -> dict:
    """What rcl gives ``node`` in ``namespace`` from the file at ``path``."""
    import rclpy
    from rclpy.node import Node

    context = rclpy.context.Context()
    args = ["--ros-args", "--params-file", str(path), "-r", f"__node:={node}", "-r", f"__ns:={namespace}"]
    rclpy.init(args=args, context=context)
    try:
        probe = Node("probe", context=context)
        values = {name: p.value for name, p in probe._parameter_overrides.items()}
        probe.destroy_node()
        return values
    finally:
        rclpy.shutdown(context=context)


def same(a, b) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(same, a, b))
    nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    return type(a) is type(b) and (a == b or nan)


def test_values_are_typed_as_rcl_types_them(tmp_path):
    """PyYAML's YAML 1.1 kept ``n`` as text (true in Python: the offline pose stage mirrored the
    images the node did not) and ``5e-1`` as text (refused offline, 0.5 in the node)."""
    path = tmp_path / "typed.yaml"
    lines = [f"    p{i}: {value}" for i, value in enumerate(VALUES)]
    path.write_text("/**/recognizer:\n  ros__parameters:\n" + "\n".join(lines) + "\n")
    ours, theirs = node_parameters(read_params_file(path), "recognizer"), rcl_parameters(path, "recognizer")
    differ = [(VALUES[i], theirs[f"p{i}"], ours[f"p{i}"]) for i in range(len(VALUES))]
    assert [d for d in differ if not same(d[1], d[2])] == []


def test_nested_namespaces_and_repeated_blocks_apply_as_in_rcl(tmp_path):
    path = tmp_path / "nested.yaml"
    path.write_text(
        "/**:\n  recognizer:\n    ros__parameters: {a: 1, c: 1}\n"
        "robot1:\n  recognizer:\n    ros__parameters: {b: 2}\n  pose:\n    ros__parameters: {c: 3}\n"
        "/robot1:\n  recognizer:\n    ros__parameters: {d: 4}\n"
        "/**/recognizer:\n  ros__parameters: {a: 5, a: 6}\n"
        "/**/recognizer:\n  ros__parameters: {e: 7}\n"
    )
    assert_read_as_rcl_reads_it(path, ("", "robot1", "a/b"))
    assert node_parameters(read_params_file(path), "recognizer", "robot1") == {
        "a": 6,
        "b": 2,
        "c": 1,
        "d": 4,
        "e": 7,
    }


def test_a_namespace_with_parameters_of_its_own_keeps_the_nodes_below_it(tmp_path):
    path = tmp_path / "both.yaml"
    path.write_text(
        "/**:\n  ros__parameters: {a: 1}\n  recognizer:\n    ros__parameters: {b: 2}\n"
        "robot1:\n  ros__parameters: {c: 3}\n  recognizer:\n    ros__parameters: {d: 4}\n"
    )
    assert_read_as_rcl_reads_it(path, ("", "robot1"))


def assert_read_as_rcl_reads_it(path, namespaces) -> None:
    """The recognizer in each of ``namespaces`` gets from the file what rcl gives it."""
    data = read_params_file(path)
    for namespace in namespaces:
        assert node_parameters(data, "recognizer", namespace) == rcl_parameters(
            path, "recognizer", "/" + namespace
        )


def test_a_parameter_given_twice_takes_the_value_rcl_takes(tmp_path):
    """rcl keeps one value per type and the node reads bool, then int, float, text and arrays."""
    values = ["1", "2.5", "x", "3.0", "true", "[1, 2]", "[x]", "2"]
    path = tmp_path / "twice.yaml"
    lines = [f"p{i}_{j}: {a}\n    p{i}_{j}: {b}" for i, a in enumerate(values) for j, b in enumerate(values)]
    path.write_text("/**/recognizer:\n  ros__parameters:\n    " + "\n    ".join(lines) + "\n")
    assert node_parameters(read_params_file(path), "recognizer") == rcl_parameters(path, "recognizer")
    path.write_text(
        "/**/recognizer:\n  ros__parameters: {a: x}\n/**/recognizer:\n  ros__parameters: {a: 2.5}\n"
    )
    assert node_parameters(read_params_file(path), "recognizer") == rcl_parameters(path, "recognizer")


def test_entries_rank_where_they_first_appear_as_in_rcl(tmp_path):
    """The parent's own parameters came first whatever the file's order: a nested node's value
    won where rcl gives the parent's."""
    path = tmp_path / "order.yaml"
    path.write_text(
        "/**:\n  recognizer:\n    ros__parameters: {smoothing: 0.5, c: 1}\n"
        "/**:\n  ros__parameters: {smoothing: 1.0}\n"
        "robot1: {recognizer: {ros__parameters: {c: 1}}, ros__parameters: {c: 2}}\n"
    )
    assert_read_as_rcl_reads_it(path, ("", "robot1"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("/**:\n  cam/pose:\n    ros__parameters: {num_poses: 2}\n", "nested under '/\\*\\*' holds '/'"),
        ("/**/recognizer:\n  ros__parameters:\n    model:\n", "no value"),
        ("/**/recognizer:\n  ros__parameters:\n", "no value"),
    ],
)
def test_files_rcl_refuses_or_reads_otherwise_than_they_look_are_refused(tmp_path, text, message):
    path = tmp_path / "odd.yaml"
    path.write_text(text)
    with pytest.raises(ParamsFileError, match=message):
        read_params_file(path)


def test_an_array_of_mixed_types_is_refused_as_rcl_refuses_it(tmp_path):
    path = tmp_path / "mixed.yaml"
    path.write_text("/**/recognizer:\n  ros__parameters:\n    a: [1, 2.0]\n")
    with pytest.raises(ParamsFileError, match="an array mixes types"):
        read_params_file(path)


@pytest.mark.parametrize("text", ["n", "yes", "010", "1e5", ".nan", "0x1F", "true", "plain", ""])
def test_text_is_written_back_as_text(tmp_path, text):
    """A file written for the nodes (bag eval's params.yaml) keeps a model path ``n`` a path."""
    path = tmp_path / "written.yaml"
    path.write_text(dump_params_file({"/**/recognizer": {"ros__parameters": {"model": text, "t": 0.5}}}))
    assert read_params_file(path)["/**/recognizer"]["ros__parameters"] == {"model": text, "t": 0.5}
    assert rcl_parameters(path, "recognizer") == {"model": text, "t": 0.5} if text else True
