"""Ctrl-C ends `bharnet run` and `ros2 run` nodes quietly, also when a second SIGINT hits teardown.

`timeout -s INT` and a terminal signal the whole process group, so two SIGINTs arrive close together;
the pose node is busy publishing when the first one lands.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest
import rclpy
import yaml
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient

from bharnet_ros.core.paths import CHECKOUT, share_file
from bharnet_ros.msg import PersonSkeletonArray
from bharnet_ros.nodes.lifecycle import CallbackErrorCount, spin_through_errors

CAMERA = "/shutdown_test/image_raw"


@pytest.fixture
def looping_video(tmp_path) -> tuple[str, str]:
    """A short synthetic clip and a parameters file that loops it (frames flow until the end)."""
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25, (320, 240))
    for i in range(25):
        frame = np.full((240, 320, 3), 40, np.uint8)
        cv2.circle(frame, (40 + 10 * i, 120), 30, (200, 180, 160), -1)
        writer.write(frame)
    writer.release()
    params = yaml.safe_load(share_file("config/recognize.yaml").read_text())
    params["/**/video_source"]["ros__parameters"]["loop"] = True
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    return str(video), str(params_file)


class Output:
    """Collects a process's output lines in a thread, so the test can wait on them."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=lambda: self.lines.extend(process.stdout), daemon=True)
        self._thread.start()

    def text(self) -> str:
        self._thread.join(timeout=30)
        return "".join(self.lines)


def _start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=CHECKOUT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, signalled like `timeout -s INT` does
    )


def _interrupt_twice(process: subprocess.Popen) -> None:
    for _ in range(2):
        try:
            os.killpg(process.pid, signal.SIGINT)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def _assert_quiet_exit(process: subprocess.Popen, output: Output) -> None:
    assert process.wait(timeout=60) == 0
    text = output.text()
    for noise in ("Traceback", "Exception in thread", "InvalidHandle", "KeyboardInterrupt"):
        assert noise not in text, text


def test_bharnet_run_exits_quietly_on_a_double_ctrl_c(ros, wait, tiny_model, looping_video):
    video, params_file = looping_video
    skeletons: list[PersonSkeletonArray] = []
    probe = ros.add(Node, "probe")
    probe.create_subscription(PersonSkeletonArray, "/bharnet/skeletons", skeletons.append, 10)
    run = ["bharnet_ros.cli", "run", "--video", video, "--camera-topic", CAMERA, "--model", str(tiny_model)]
    process = _start([*run, "--params-file", params_file])
    output = Output(process)
    try:
        assert wait(lambda: len(skeletons) >= 10, timeout=90), "".join(output.lines)  # the pose stage works
        _interrupt_twice(process)
        _assert_quiet_exit(process, output)
    finally:
        process.kill()


def test_a_ros2_run_node_exits_quietly_on_a_double_ctrl_c(wait, tiny_model):
    process = _start(["bharnet_ros.nodes.recognizer_node", "--ros-args", "-p", f"model:={tiny_model}"])
    output = Output(process)
    try:
        assert wait(lambda: any("running on" in line for line in output.lines), timeout=90)
        _interrupt_twice(process)
        _assert_quiet_exit(process, output)
    finally:
        process.kill()


def test_a_ctrl_c_during_a_model_swap_ends_the_node_quietly(ros, wait, tiny_model, tmp_path, children):
    """The load runs in a thread while the parameter set serves the skeletons (nodes/serving.py)."""
    process = _start(["bharnet_ros.nodes.recognizer_node", "--ros-args", "-p", f"model:={tiny_model}"])
    output = Output(process)
    try:
        assert wait(lambda: any("running on" in line for line in output.lines), timeout=90)
        client = AsyncParameterClient(ros.add(Node, "swapper"), "recognizer")
        assert client.wait_for_services(timeout_sec=30)
        models = [shutil.copy(tiny_model, tmp_path / "new.onnx"), str(tiny_model)]
        caught = False
        for attempt in range(5):  # until a set is caught while a child process checks its file
            client.set_parameters([Parameter("model", value=str(models[attempt % 2]))])
            if caught := wait(lambda: bool(children(process.pid)), timeout=10):
                break
        assert caught, "no swap was caught under way"
        _interrupt_twice(process)
        _assert_quiet_exit(process, output)
    finally:
        process.kill()


@pytest.mark.parametrize("setting", ["rate:=30", "rate:=-1.0", "video:=0"])
def test_a_bad_start_up_parameter_is_one_line_and_exit_2(setting):
    """``ros2 run`` with a parameter of the wrong type or range: one line, not rclpy's traceback."""
    args = [sys.executable, "-m", "bharnet_ros.nodes.video_source_node", "--ros-args", "-p", setting]
    done = subprocess.run(args, cwd=CHECKOUT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: ")
    assert setting.split(":=")[0] in lines[0]


@pytest.mark.parametrize("rule", [["-p", "video:="], ["-r", "image_raw:={node}/x"]])
def test_ros_arguments_rcl_cannot_parse_are_our_one_line_and_exit_2(rule):
    """rcl refuses the rule in ``rclpy.init`` (it logs one line of its own): no traceback follows."""
    args = [sys.executable, "-m", "bharnet_ros.nodes.video_source_node", "--ros-args", *rule]
    done = subprocess.run(args, cwd=CHECKOUT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    ours = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(ours) == 1
    assert rule[1] in ours[0]


class _SpinAfterCtrlC:
    """An executor whose spin fails as rclpy's does when Ctrl-C invalidates the context mid-wait."""

    def __init__(self, context: Context) -> None:
        self.context = context

    def spin(self) -> None:
        rclpy.shutdown(context=self.context)
        raise RuntimeError("failed to initialize wait set: the given context is not valid")


class _Noting(CallbackErrorCount):
    """The node's side of spin_through_errors: the errors it was told of."""

    def __init__(self) -> None:
        self.errors: list[Exception] = []

    def note_callback_error(self, err: Exception) -> None:
        self.errors.append(err)


def test_a_spin_cut_short_by_ctrl_c_is_not_reported():
    context = Context()
    rclpy.init(context=context)
    node = _Noting()
    spin_through_errors(_SpinAfterCtrlC(context), node)  # the context is gone: part of the shutdown
    assert node.errors == []


def test_a_spin_error_while_running_is_noted_and_spinning_goes_on():
    context = Context()
    rclpy.init(context=context)

    class FailsOnce:
        context = None
        spins = 0

        def spin(self) -> None:
            self.spins += 1
            if self.spins == 1:
                raise RuntimeError("rclpy's time source failed")

    executor, node = FailsOnce(), _Noting()
    executor.context = context
    spin_through_errors(executor, node)
    assert executor.spins == 2
    assert [str(err) for err in node.errors] == ["rclpy's time source failed"]
    executor.spins = 0
    with pytest.raises(RuntimeError, match="time source"):  # a tool's own probe node: not ours to hide
        spin_through_errors(executor, object())
    rclpy.shutdown(context=context)


def test_an_error_that_recurs_at_once_pauses_spinning(monkeypatch):
    """A cause that never clears (every spin fails at once) looped at full speed on one core."""
    from bharnet_ros.nodes import lifecycle

    context = Context()
    rclpy.init(context=context)
    pauses: list[float] = []
    monkeypatch.setattr(lifecycle.time, "sleep", pauses.append)

    class FailsFiveTimes:
        spins = 0

        def spin(self) -> None:
            self.spins += 1
            if self.spins <= 5:
                raise RuntimeError("rclpy's time source failed")

    executor, node = FailsFiveTimes(), _Noting()
    executor.context = context
    spin_through_errors(executor, node)
    assert len(node.errors) == 5
    assert pauses == [lifecycle.ERROR_PAUSE_SECONDS] * 4  # the first error is not paused after
    rclpy.shutdown(context=context)


def test_a_signal_during_the_start_up_check_ends_it_as_a_shutdown_not_an_error():
    """rclpy's SIGTERM handler shuts the context down without raising: the check for another graph,
    which runs while the node modules import, must not call into the dead context (an RCLError)."""
    from rclpy.executors import ExternalShutdownException

    from bharnet_ros.nodes.graph import GraphOptions
    from bharnet_ros.nodes.runner import find_conflicts

    context = Context()
    rclpy.init(context=context)
    with pytest.raises(ExternalShutdownException):
        find_conflicts(GraphOptions(), context, wait=5.0, meanwhile=lambda: rclpy.shutdown(context=context))


def test_callback_errors_turn_the_status_error_for_a_while_then_warn(monkeypatch):
    """Five bad /clock messages left the video source ERROR for good, hiding that its video had
    ended normally."""
    from bharnet_ros.nodes import lifecycle
    from bharnet_ros.nodes.diagnostics import ERROR, OK, WARN

    class Counted(CallbackErrorCount):
        def get_logger(self):
            return rclpy.logging.get_logger("counted")

    now = [1000.0]
    monkeypatch.setattr(lifecycle.time, "monotonic", lambda: now[0])
    node = Counted()
    assert node.with_callback_errors((OK, "ended", {})) == (OK, "ended", {"callback_errors": 0})
    node.note_callback_error(RuntimeError("Seconds value must not be negative"))
    level, message, values = node.with_callback_errors((OK, "ended", {}))
    assert (level, values) == (ERROR, {"callback_errors": 1})
    assert "Seconds value must not be negative" in message
    now[0] += lifecycle.CALLBACK_ERROR_HOLD_SECONDS + 1
    level, message, _ = node.with_callback_errors((OK, "ended", {}))
    assert level == WARN
    assert message.startswith("ended; 1 callbacks failed")


def test_a_signal_while_the_graph_starts_is_an_interruption(monkeypatch, capsys):
    """It ended with exit code 0 and no word, where nodes.md promises 'interrupted' and 130."""
    from contextlib import contextmanager

    from rclpy.executors import ExternalShutdownException

    from bharnet_ros.nodes import runner
    from bharnet_ros.nodes.graph import GraphOptions

    @contextmanager
    def interrupted_start(*args, **kwargs):
        raise ExternalShutdownException  # the signal, as rclpy turns it into one while nodes are made
        yield

    monkeypatch.setattr(runner, "running_graph", interrupted_start)
    assert runner.run_graph(GraphOptions()) == 130
    assert "bharnet run: interrupted" in capsys.readouterr().err


def test_a_graph_torn_down_releases_what_its_nodes_configured(tiny_model, looping_video):
    """Destroying a node left its MediaPipe graphs and ONNX session to the garbage collector:
    threads and some 200 MB piled up per graph in a process that starts several."""
    from bharnet_ros.nodes.bag_io import private_domain
    from bharnet_ros.nodes.graph import GraphOptions
    from bharnet_ros.nodes.runner import running_graph

    video, params_file = looping_video
    options = GraphOptions(video=video, model=str(tiny_model), params_file=params_file)
    with private_domain() as domain, running_graph(options, domain_id=domain) as graph:
        deadline = time.monotonic() + 60
        while graph.node("pose").estimator is None and time.monotonic() < deadline:
            time.sleep(0.1)
        pose, recognizer = graph.node("pose"), graph.node("recognizer")
        assert pose.estimator is not None
    assert pose.estimator is None
    assert recognizer.recognizer is None
