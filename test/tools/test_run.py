"""``bharnet run`` refuses unusable options in one line before the graph starts (no ROS needed)."""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import pytest

from bharnet_ros.cli import main
from bharnet_ros.nodes.graph import GraphOptions
from bharnet_ros.tools import run


def write_clip(path, frames: int) -> str:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for _ in range(frames):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    return str(path)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("text_video", "--video: cannot open"),
        ("empty_video", "--video:"),
        ("missing_video", "--video: video not found"),
        ("camera_topic", "--camera-topic 'bad topic' is no valid topic name"),
        ("namespace", "--namespace 'a b' is invalid"),
        ("namespace_digit", "--namespace 'robot/1a' is invalid"),
        ("model", "--model: "),
        ("duration", "--duration nan is out of range"),
    ],
)
def test_unusable_options_are_one_line_before_the_graph_starts(tmp_path, capsys, case, message):
    text = tmp_path / "text.mp4"
    text.write_text("not a video")
    csv = tmp_path / "model.csv"
    csv.write_text("a,b\n")
    argv = {
        "text_video": ["--video", str(text)],
        "empty_video": ["--video", write_clip(tmp_path / "zero.avi", 0)],
        "missing_video": ["--video", str(tmp_path / "nope.mp4")],
        "camera_topic": ["--camera-topic", "bad topic"],
        "namespace": ["--namespace", "a b"],
        "namespace_digit": ["--namespace", "robot/1a"],
        "model": ["--model", str(csv)],
        "duration": ["--duration", "nan"],
    }[case]
    assert main(["run", "--duration", "1", *argv]) == 2  # the last --duration counts
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert message in error


def test_usable_options_pass_the_checks(tmp_path, tiny_model):
    options = GraphOptions(
        video=write_clip(tmp_path / "three.avi", 3), model=str(tiny_model), namespace="/lab/robot1"
    )
    run.check_options(options)
    run.check_options(GraphOptions(video="0", namespace="robot1"))  # a camera number; the default model
    parser = argparse.ArgumentParser()
    run.add_arguments(parser)
    assert parser.parse_args(["--duration", "2"]).duration == 2.0
