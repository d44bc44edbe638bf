"""What both lifecycle nodes share: one /diagnostics publisher for life, and a warning when a second
graph shares the ROS domain (node level, and `bharnet run` refusing to start)."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter, defaultdict

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.time import Time

from bharnet_ros.core.paths import CHECKOUT
from bharnet_ros.nodes.graph import GraphOptions
from bharnet_ros.nodes.pose_node import PoseNode
from bharnet_ros.nodes.recognizer_node import RecognizerNode
from bharnet_ros.nodes.runner import find_conflicts

PERIOD = 0.25  # diagnostics_period in these tests


def test_one_diagnostics_publisher_per_node_across_reconfigures(ros, wait, tiny_model, lifecycle):
    period = Parameter("diagnostics_period", value=PERIOD)
    ros.add(PoseNode, parameter_overrides=[period])
    ros.add(RecognizerNode, parameter_overrides=[period, Parameter("model", value=str(tiny_model))])
    probe = ros.add(Node, "diagnostics_probe")
    received: list[tuple[str, bytes, int]] = []  # node, publisher gid, header stamp (ns)

    def record(msg: DiagnosticArray, info: dict) -> None:
        stamp = Time.from_msg(msg.header.stamp).nanoseconds
        for status in msg.status:
            gid = bytes(info["publisher_gid"]["data"])
            received.append((status.name.split(":")[0], gid, stamp))

    probe.create_subscription(DiagnosticArray, "/diagnostics", record, 100)
    for name in ("pose", "recognizer"):
        transitions = lifecycle(name)
        assert wait(lambda name=name: _running(received, name))
        for _ in range(2):
            assert transitions.set("deactivate", "cleanup", "configure", "activate")
    since = probe.get_clock().now().nanoseconds  # what was published before may still arrive
    assert wait(lambda: min(Counter(n for n, _, t in received if t >= since).values(), default=0) >= 10)
    publishers = Counter(info.node_name for info in probe.get_publishers_info_by_topic("/diagnostics"))
    assert publishers == {"pose": 1, "recognizer": 1}
    gids, stamps = defaultdict(set), defaultdict(list)
    for node, gid, stamp in received:
        gids[node].add(gid)
        if stamp >= since:
            stamps[node].append(stamp)
    assert {node: len(ids) for node, ids in gids.items()} == {"pose": 1, "recognizer": 1}
    for node, sent in stamps.items():  # one timer each: never more often than the period
        span = (max(sent) - min(sent)) * 1e-9
        assert len(sent) <= span / PERIOD + 3, f"{node}: {len(sent)} messages stamped within {span:.2f} s"


def _running(received: list, name: str) -> bool:
    return any(node == name for node, _, _ in received)


def test_a_second_graph_in_the_domain_is_reported(ros, wait, tiny_model):
    model = Parameter("model", value=str(tiny_model))
    ours = ros.add(RecognizerNode, parameter_overrides=[model, Parameter("diagnostics_period", value=PERIOD)])
    probe = ros.add(Node, "probe")
    statuses: list[DiagnosticStatus] = []
    probe.create_subscription(DiagnosticArray, "/diagnostics", lambda m: statuses.extend(m.status), 100)
    assert wait(lambda: ours.action_pub is not None)
    elsewhere = rclpy.Context()  # another process's participant, in the same ROS domain
    rclpy.init(context=elsewhere)
    manual = Parameter("autostart", value=False)
    theirs = RecognizerNode(context=elsewhere, parameter_overrides=[model, manual])
    try:
        theirs.trigger_configure()  # publishes on /action too
        assert wait(lambda: any(_warns_of_a_second_graph(s) for s in statuses))
        assert wait(lambda: _reported(ours.conflicts, "another node is named /recognizer"))
        assert wait(lambda: _reported(ours.conflicts, "1 other publisher(s) on /action"))
        assert "a node /recognizer is already running" in find_conflicts(GraphOptions(), context=ros.context)
        assert find_conflicts(GraphOptions(namespace="robot2"), context=ros.context, wait=0.5) == []
    finally:
        theirs.destroy_node()
        rclpy.try_shutdown(context=elsewhere)
    assert wait(lambda: not ours.conflicts)


def _reported(conflicts: list[str], text: str) -> bool:
    return any(text in conflict for conflict in conflicts)


def _warns_of_a_second_graph(status: DiagnosticStatus) -> bool:
    return status.level == DiagnosticStatus.WARN and "another node is named" in status.message


def test_bharnet_run_refuses_to_start_a_second_graph(ros, wait, tiny_model):
    first = ros.add(RecognizerNode, parameter_overrides=[Parameter("model", value=str(tiny_model))])
    assert wait(lambda: first.inputs)
    command = [sys.executable, "-m", "bharnet_ros.cli", "run", "--model", str(tiny_model), "--duration", "30"]
    result = subprocess.run(command, cwd=CHECKOUT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "another recognition graph is running" in result.stderr
    assert "/recognizer" in result.stderr.split("another recognition graph")[1]
    assert "--namespace" in result.stderr
    assert "ROS_DOMAIN_ID" in result.stderr


def test_a_shorter_diagnostics_period_applies_at_once_not_after_the_old_tick(
    ros, wait, tiny_model, parameter_client
):
    model = Parameter("model", value=str(tiny_model))
    node = ros.add(RecognizerNode, parameter_overrides=[model, Parameter("diagnostics_period", value=PERIOD)])
    probe = ros.add(Node, "diagnostics_period_probe")
    stamps: list[int] = []  # header stamps (ns) of the node's /diagnostics
    probe.create_subscription(
        DiagnosticArray,
        "/diagnostics",
        lambda m: stamps.append(Time.from_msg(m.header.stamp).nanoseconds),
        100,
    )
    assert wait(lambda: stamps)
    client = parameter_client("recognizer")
    assert client.set(diagnostics_period=60.0)["diagnostics_period"].successful
    # Until any tick due under the old period has passed: then the next one is a minute away.
    assert wait(lambda: node.diagnostics_timer.time_until_next_call() > 30e9)
    assert client.set(diagnostics_period=PERIOD)["diagnostics_period"].successful
    since = probe.get_clock().now().nanoseconds  # statuses published before may still arrive
    assert wait(lambda: any(t >= since for t in stamps), timeout=20.0)  # not the minute 60 s scheduled


def test_graphs_in_two_namespaces_stay_apart_on_diagnostics(ros, wait, tiny_model):
    model = Parameter("model", value=str(tiny_model))
    for namespace in ("robot1", "robot2"):
        ros.add(RecognizerNode, namespace=namespace, parameter_overrides=[model])
    probe = ros.add(Node, "namespaces_probe")
    names: set[str] = set()
    probe.create_subscription(
        DiagnosticArray, "/diagnostics", lambda m: names.update(s.name for s in m.status), 100
    )
    assert wait(lambda: {"robot1/recognizer: status", "robot2/recognizer: status"} <= names)
