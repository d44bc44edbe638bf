"""A new model in the running recognizer: set ``model``, no restart; a bad file is refused.

Through a real parameter client (``ros2 param set``), over Fast DDS, with tiny exported models.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_msgs.msg import Header

from bharnet_ros.core.inference import OnnxClassifier
from bharnet_ros.core.recognizer import Recognizer, RecognizerConfig, load_window_classifier
from bharnet_ros.msg import ActionLabels, PersonSkeletonArray
from bharnet_ros.nodes.conversions import frame_to_msg, msg_to_frame, seconds_to_stamp, stamp_to_seconds
from bharnet_ros.nodes.recognizer_node import RecognizerNode
from bharnet_ros.training.synth import generate_sequence

FOUR = ["idle", "wave", "stop", "follow_me"]


def export_tiny(path, labels, frames=16):
    """An untrained expert-only BHaRNet-E with these labels (like conftest's tiny_model)."""
    from bharnet_ros.core.preprocess import PreprocessConfig
    from bharnet_ros.model.bharnet import build_model
    from bharnet_ros.model.export import export_onnx

    config = {
        "variant": "bharnet_e_expert_only",
        "num_classes": len(labels),
        "input": {"frames": frames, "body_layout": "mediapipe33", "num_persons": 1},
        "backbone": {"base_channels": 8},
    }
    preprocess = PreprocessConfig(body_layout="mediapipe33", frames=frames, num_persons=1, space="image")
    export_onnx(build_model(config).eval(), path, labels, preprocess, hand_intensive=["follow_me"])
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory, with_metadata):
    pytest.importorskip("torch")
    folder = tmp_path_factory.mktemp("swap")
    (folder / "broken.onnx").write_bytes(b"not a model")
    four = export_tiny(folder / "four.onnx", FOUR)
    preprocess = OnnxClassifier(four, providers="cpu").preprocess.to_dict()
    two_persons, world = {**preprocess, "num_persons": 2}, {**preprocess, "space": "world"}
    return {
        "four": four,
        "short": export_tiny(folder / "short.onnx", FOUR, frames=8),
        "broken": folder / "broken.onnx",
        "missing": folder / "missing.onnx",
        "name_too_long": folder / ("m" * 300 + ".onnx"),
        "flags_not_a_list": with_metadata(four, folder / "flags.onnx", hand_intensive=5),
        "threshold_5": with_metadata(four, folder / "threshold.onnx", none_threshold=5.0),
        "version_null": with_metadata(four, folder / "version.onnx", format_version=None),
        "temperature_nan": with_metadata(four, folder / "temperature.onnx", temperature=float("nan")),
        "preprocess_lies": with_metadata(four, folder / "persons.onnx", preprocess=two_persons),
        "world_space": with_metadata(four, folder / "world.onnx", preprocess=world),
        "a_folder": folder,
    }


def messages(frames=30, start=100.0):
    sequence = generate_sequence("wave", np.random.default_rng(0))
    for t in range(frames):
        frame = sequence.frame(t % len(sequence))
        frame.timestamp = start + t / 30
        header = Header(stamp=seconds_to_stamp(frame.timestamp), frame_id="camera")
        yield PersonSkeletonArray(header=header, persons=[frame_to_msg(frame, header)])


@pytest.fixture
def running(ros, wait, tiny_model):
    """A recognizer on the tiny 3-class model with a person's window filled, and its latched labels."""
    node = ros.add(
        RecognizerNode,
        parameter_overrides=[
            Parameter("model", value=str(tiny_model)),
            Parameter("window_seconds", value=1.0),
            Parameter("person_timeout", value=30.0),  # windows outlive a slow CI machine
        ],
    )
    probe = ros.add(Node, "probe")
    labels: list[ActionLabels] = []
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    probe.create_subscription(ActionLabels, "labels", labels.append, latched)
    publisher = probe.create_publisher(PersonSkeletonArray, "skeletons", 100)
    assert wait(lambda: node.inputs and publisher.get_subscription_count() > 0 and labels)
    for msg in messages():
        publisher.publish(msg)
        time.sleep(1 / 60)
    assert wait(lambda: node.recognizer.windows.stats.frames_pushed >= 30)
    return node, labels


def test_a_good_model_replaces_the_running_one_and_keeps_the_windows(running, models, wait, parameter_client):
    node, labels = running
    core, buffered = node.recognizer, len(node.recognizer.windows.get(0))
    result = parameter_client("recognizer").set(model=str(models["four"]))["model"]
    assert result.successful, result.reason
    assert node.recognizer is core  # no restart: the same core recognizer, a new classifier
    assert core.classifier.class_names == FOUR
    assert len(core.windows.get(0)) == buffered  # same window, frames and layout: every frame kept
    assert wait(lambda: [c.class_name for c in labels[-1].class_map] == FOUR)
    assert "four.onnx" in labels[-1].model
    level, _, values = node.status()
    assert values["model_swaps"] == 1
    assert "four.onnx" in values["model"]
    assert "windows kept" in values["last_model_change"]


def test_a_model_reading_other_windows_resets_them(running, models, parameter_client):
    node, _ = running
    assert parameter_client("recognizer").set(model=str(models["short"]))["model"].successful
    assert node.recognizer.classifier.window_length == 8
    assert len(node.recognizer.windows) == 0
    assert "windows reset" in node.status()[2]["last_model_change"]


@pytest.mark.parametrize(
    "bad",
    [
        "broken", "missing", "name_too_long", "flags_not_a_list", "threshold_5", "version_null",
        "temperature_nan", "preprocess_lies", "a_folder",
    ],
)  # fmt: skip
def test_a_bad_model_is_refused_and_the_old_one_keeps_running(running, models, bad, parameter_client):
    node, labels = running
    client = parameter_client("recognizer")
    before = client.get("model")["model"]
    result = client.set(model=str(models[bad]))["model"]
    assert not result.successful
    assert "old one keeps running" in result.reason
    assert client.get("model")["model"] == before  # the parameter did not change
    assert node.recognizer.classifier.class_names == ["idle", "wave", "stop"]
    assert len(node.recognizer.windows) == 1
    assert [c.class_name for c in labels[-1].class_map] == ["idle", "wave", "stop"]
    values = node.status()[2]
    assert (values["model_swaps"], values["model_swaps_refused"]) == (0, 1)


def test_a_set_refused_for_another_parameter_loads_no_model(running, models, wait, parameter_client):
    """One atomic set of a new model and a bad topic: refused before the model file is loaded."""
    node, _ = running
    client = parameter_client("recognizer").client
    future = client.set_parameters_atomically(
        [Parameter("model", value=str(models["four"])), Parameter("body_topic", value="not a topic")]
    )
    assert wait(future.done), "no answer from set_parameters_atomically"
    assert not future.result().result.successful
    assert node.staged_model is None  # refused before the file was loaded
    assert node.recognizer.classifier.class_names == ["idle", "wave", "stop"]


def test_the_same_path_set_again_loads_the_file_if_it_changed(running, wait, parameter_client, tmp_path):
    node, labels = running
    client = parameter_client("recognizer")
    taught = export_tiny(tmp_path / "taught.onnx", FOUR)
    assert client.set(model=str(taught))["model"].successful
    assert client.set(model=str(taught))["model"].successful  # unchanged: nothing to do
    assert node.status()[2]["model_swaps"] == 1
    export_tiny(tmp_path / "taught.onnx", [*FOUR, "go_charge"])  # taught again, same name
    assert client.set(model=str(taught))["model"].successful
    assert node.recognizer.classifier.class_names == [*FOUR, "go_charge"]
    assert wait(lambda: labels[-1].class_map[-1].class_name == "go_charge")
    assert node.status()[2]["model_swaps"] == 2


def test_the_core_keeps_windows_but_restarts_smoothing_for_a_new_class_list(tiny_model, models):
    recognizer = Recognizer(load_window_classifier(str(tiny_model)), RecognizerConfig(min_seconds=0.2))
    for msg in messages(frames=20):
        recognizer.push(msg_to_frame(msg.persons[0]))
    assert "recognizer" in recognizer.windows.get(0).state
    assert recognizer.replace_classifier(load_window_classifier(str(models["four"])))
    assert len(recognizer.windows.get(0)) == 20
    assert "recognizer" not in recognizer.windows.get(0).state  # the old class list's average is gone


def failing(classify):
    def run(window):
        raise RuntimeError("a node the dry run never reached")

    return run


def slow(classify):
    def run(window):
        time.sleep(0.2)  # more than the default stride of 0.15 s
        return classify(window)

    return run


def not_finite(classify):
    def run(window):
        return dataclasses.replace(classify(window), distance=float("nan"))  # no decision to publish

    return run


@pytest.mark.parametrize(
    ("fault", "why"),
    [
        (failing, "failed on a live window"),
        (slow, "ms per window"),
        (not_finite, "scores or distance not finite"),
    ],
)
def test_a_swapped_in_model_that_fails_or_lags_on_live_windows_is_rolled_back(
    ros, running, models, wait, parameter_client, fault, why
):
    """The load check sees one still window; real windows can fail or take seconds (a hostile
    graph can tell them apart). The old model, kept on probation, comes back with its parameter."""
    node, labels = running
    client = parameter_client("recognizer")
    before = client.get("model")["model"]
    assert client.set(model=str(models["four"]))["model"].successful
    new = node.recognizer.classifier
    new.classify = fault(new.classify)  # the ONNX Runtime edge
    feed(ros, wait, frames=60)
    assert wait(lambda: node.status()[2]["model_swaps_rolled_back"] == 1)
    assert node.recognizer.classifier.class_names == ["idle", "wave", "stop"]
    assert client.get("model")["model"] == before
    assert why in node.status()[2]["last_model_change"]
    assert wait(lambda: [c.class_name for c in labels[-1].class_map] == ["idle", "wave", "stop"])
    assert node.callback_errors == 0


def test_a_swapped_in_model_of_another_space_than_the_skeletons_is_rolled_back(
    ros, running, models, wait, parameter_client
):
    """It loads (its check window is in its own space), then refuses every live skeleton: the node
    published nothing for good, and the probation, judging no window, never ended."""
    node, labels = running
    client = parameter_client("recognizer")
    before = client.get("model")["model"]
    assert client.set(model=str(models["world_space"]))["model"].successful
    feed(ros, wait, frames=20)
    assert wait(lambda: node.status()[2]["model_swaps_rolled_back"] == 1)
    assert client.get("model")["model"] == before
    assert "world-space" in node.status()[2]["last_model_change"]
    assert wait(lambda: [c.class_name for c in labels[-1].class_map] == ["idle", "wave", "stop"])
    assert node.status()[2]["bad_messages"] == 0  # the input was fine: the swap was at fault


def test_a_model_that_proves_itself_ends_its_probation(
    ros, running, models, wait, parameter_client, monkeypatch
):
    from bharnet_ros.core import model_swap

    monkeypatch.setattr(model_swap, "SLOWEST_STRIDE", 3600.0)  # no machine is too slow here
    node, _ = running
    assert parameter_client("recognizer").set(model=str(models["four"]))["model"].successful
    assert node.probation is not None
    feed(ros, wait, frames=120)
    assert wait(lambda: node.probation is None)
    assert node.recognizer.classifier.class_names == FOUR


def feed(ros, wait, frames: int, start: float = 200.0) -> None:
    """Publish one person's frames from a new probe node, as a camera at 60 Hz would."""
    publisher = ros.add(Node, "feeder").create_publisher(PersonSkeletonArray, "skeletons", 100)
    assert wait(lambda: publisher.get_subscription_count() > 0)
    for msg in messages(frames=frames, start=start):
        publisher.publish(msg)
        time.sleep(1 / 60)


def test_a_set_naming_model_twice_ends_with_the_last_value_and_its_threshold(
    running, models, wait, parameter_client
):
    """rclpy stores the last value of a name given twice; the node must run that one, and republish
    the threshold set with it."""
    node, labels = running
    client = parameter_client("recognizer").client
    running_model = node.params["model"]
    future = client.set_parameters_atomically(
        [
            Parameter("model", value=str(models["four"])),
            Parameter("model", value=running_model),
            Parameter("none_threshold", value=0.7),
        ]
    )
    assert wait(future.done)
    assert future.result().result.successful
    assert node.params["model"] == running_model == node.get_parameter("model").value
    assert node.recognizer.classifier.class_names == ["idle", "wave", "stop"]
    assert wait(lambda: labels[-1].threshold == pytest.approx(0.7))


def test_a_model_set_while_unconfigured_is_checked(running, models, lifecycle, parameter_client):
    node, _ = running
    assert lifecycle("recognizer").set("deactivate", "cleanup")
    client = parameter_client("recognizer")
    result = client.set(model=str(models["broken"]))["model"]
    assert not result.successful
    assert "not configured" in result.reason
    assert client.set(model=str(models["four"]))["model"].successful
    assert lifecycle("recognizer").set("configure")
    assert node.recognizer.classifier.class_names == FOUR


def test_the_default_model_missing_is_a_refusal_not_a_silent_service(running, parameter_client, monkeypatch):
    """``model: ""`` means the shipped model; an install without it answers the set with the reason."""
    import bharnet_ros.nodes.recognizer_node as recognizer_node

    def no_default():
        raise FileNotFoundError("no default model installed")

    monkeypatch.setattr(recognizer_node, "default_model", no_default)  # an install without models/
    node, _ = running
    result = parameter_client("recognizer").set(model="")["model"]
    assert not result.successful
    assert "no default model installed" in result.reason
    assert node.callback_errors == 0


def test_a_huge_model_path_is_cut_in_the_answer(running, parameter_client):
    node, _ = running
    result = parameter_client("recognizer").set(model="/nowhere/" + "m" * 100_000 + ".onnx")["model"]
    assert not result.successful
    assert len(result.reason) <= 300
    assert len(node.status()[2]["last_model_change"]) <= 300


def test_the_old_model_goes_on_deciding_while_a_new_one_loads(ros, running, models, wait, held_swap):
    """A model's load and check take seconds (a child process, a GPU session); the set that waits
    for it serves the skeletons meanwhile (nodes/serving.py), so the robot keeps getting decisions."""
    node, _ = running
    actions = listen_for_actions(ros, wait)
    with held_swap(str(models["four"])) as results:
        feed(ros, wait, frames=60, start=300.0)
        decided = wait(lambda: any(stamp_to_seconds(a.header.stamp) >= 300.5 for a in actions), timeout=60)
    assert decided, "no decision while the new model loaded"
    assert results[0]["model"].successful
    assert node.recognizer.classifier.class_names == FOUR


def test_a_transition_asked_for_during_a_load_waits_for_the_swap(
    ros, running, models, wait, held_swap, lifecycle
):
    """``ros2 lifecycle set`` while a model loads: the set ends first (the new model in place),
    then the node deactivates; the old model decides until then."""
    node, _ = running
    transitions = lifecycle("recognizer")
    answers = []
    with held_swap(str(models["four"])) as results:
        asking = threading.Thread(target=lambda: answers.append(transitions.set("deactivate")))
        asking.start()
        feed(ros, wait, frames=30)
        state_then = node._state_machine.current_state[1]
    asking.join(timeout=120)
    assert state_then == "active"
    assert results[0]["model"].successful
    assert answers == [True]
    assert node._state_machine.current_state[1] == "inactive"
    assert node.recognizer.classifier.class_names == FOUR
    assert node.callback_errors == 0


def test_two_rollbacks_during_one_load_leave_one_timer_to_set_the_model_back(ros, tiny_model):
    """Each rollback made its own one-shot timer, kept in one slot: the first to fire destroyed
    the second, and nothing destroyed the first, which then fired on every executor turn."""
    from bharnet_ros.core.model_swap import Probation
    from bharnet_ros.nodes.recognizer_node import Fallback

    overrides = [Parameter("model", value=str(tiny_model)), Parameter("autostart", value=False)]
    node = RecognizerNode(context=ros.context, parameter_overrides=overrides)
    try:  # not spinning: the timers are counted, not run
        node.trigger_configure()
        assert node.recognizer is not None
        before = len(list(node.timers))
        node.loading = True  # a set's load under way
        for _ in range(2):  # one failing swap, then another, in that load
            node.probation = Probation(
                Fallback(str(tiny_model), node.recognizer.classifier, node.model_stamp)
            )
            node._roll_back("failed on a live window")
        assert len(list(node.timers)) == before + 1
        node.loading = False
        node._restore_after_set()
        assert len(list(node.timers)) == before
    finally:
        node.destroy_node()


@pytest.mark.parametrize("next_model", ["broken", "short"])
def test_a_model_failing_while_another_loads_is_rolled_back_at_once(
    ros, running, models, wait, parameter_client, held_swap, next_model
):
    """A swap during a probation: the failing model goes at once, and ``model`` follows once the
    set ended, to the old model if the set was refused, else to the set's own."""
    node, _ = running
    client = parameter_client("recognizer")
    before = client.get("model")["model"]
    assert client.set(model=str(models["four"]))["model"].successful
    node.recognizer.classifier.classify = failing(None)  # the ONNX Runtime edge
    with held_swap(str(models[next_model])) as results:
        feed(ros, wait, frames=60)
        rolled_back = wait(lambda: node.model_rollbacks == 1, timeout=60)
        running_then = node.recognizer.classifier.class_names
    assert rolled_back, "the failing model stayed while another loaded"
    assert running_then == ["idle", "wave", "stop"]
    assert results[0]["model"].successful == (next_model == "short")
    expected = before if next_model == "broken" else str(models["short"])
    assert wait(lambda: client.get("model")["model"] == expected)
    if next_model == "short":
        assert node.probation.fallback.model == before  # the model that proved itself
    assert node.callback_errors == 0


def test_frames_queued_behind_slow_windows_carry_their_wait_in_processing_latency(ros, running, wait):
    """Frames wait while a slow window is classified; their actions say how long (Action.msg: from
    receiving the newest frame), so that a robot can tell a stale burst from fresh decisions."""
    node, _ = running
    classify = node.recognizer.classifier.classify

    def slow(window):
        time.sleep(0.3)
        return classify(window)

    node.recognizer.classifier.classify = slow  # the ONNX Runtime edge
    actions = listen_for_actions(ros, wait)
    publisher = ros.add(Node, "camera").create_publisher(PersonSkeletonArray, "skeletons", 100)
    assert wait(lambda: publisher.get_subscription_count() > 0)
    for msg in messages(frames=60, start=300.0):
        publisher.publish(msg)  # at once: each frame waits behind the windows before it
    assert wait(lambda: any(stamp_to_seconds(a.header.stamp) >= 301.5 for a in actions), timeout=60)
    assert max(a.processing_latency for a in actions) >= 0.6


def listen_for_actions(ros, wait) -> list:
    from bharnet_ros.msg import Action

    actions: list[Action] = []
    probe = ros.add(Node, "robot")
    probe.create_subscription(Action, "action", actions.append, 100)
    assert wait(lambda: probe.count_publishers("action") > 0)
    return actions
