"""Property-based fuzzing of the skeleton message path: whatever arrives, the node survives.

Hypothesis builds PersonSkeletonArray messages with random layouts, array lengths, values (NaN,
infinities, FLT_MAX, denormals), person ids and stamps, and hands each one to the real recognizer
node's subscription callback with a real ONNX model (a fresh node per example). Each example
starts with a message the model takes, then mixes skeletons the model would take with one field
fuzzed and skeletons fuzzed field by field (alone, the latter hardly ever reached the model). After
every example: an action was published, no callback failed, every published confidence is finite,
and what the node keeps per person stays bounded.

``make test`` runs a short search (``BHARNET_FUZZ_EXAMPLES``, default 60); ``make fuzz`` a long one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from std_msgs.msg import Header

from bharnet_ros.core.recognizer import OnnxWindowClassifier
from bharnet_ros.msg import Action, PersonSkeleton, PersonSkeletonArray
from bharnet_ros.nodes.recognizer_node import RecognizerNode

EXAMPLES = int(os.environ.get("BHARNET_FUZZ_EXAMPLES", "60"))
# Under CI the same examples every run, and no example database written into the checkout.
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")  # as test/conftest.py reads it
CI_SETTINGS = {"derandomize": True, "database": None} if ON_CI else {}
FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from([0.0, 0.5, 1.0, -1.0, 1e-40, 3.4028235e38, -3.4028235e38, 1e30]),
    st.floats(0.0, 1.0, width=32),
)
LENGTHS = st.one_of(st.sampled_from([0, 84, 100, 132, 133, 4]), st.integers(0, 200))
LAYOUTS = st.sampled_from(["mediapipe33", "ntu25", "hand21", "", "coco17", "mediapipe33 "])


@st.composite
def arrays(draw, length=LENGTHS) -> np.ndarray:
    size = draw(length)
    fill = draw(st.sampled_from(["one", "random", "plausible"]))
    if fill == "one":
        return np.full(size, draw(FLOATS), np.float32)
    if fill == "plausible":
        values = np.asarray(draw(st.lists(st.floats(0.0, 1.0, width=32), min_size=size, max_size=size)))
        return values.astype(np.float32)
    return np.asarray(draw(st.lists(FLOATS, min_size=size, max_size=size)), np.float32)


@st.composite
def stamps(draw) -> Time:
    return Time(sec=draw(st.sampled_from([0, 1, 100, 5000, 2**31 - 1]) | st.integers(0, 2**31 - 1)),
                nanosec=draw(st.integers(0, 999_999_999)))  # fmt: skip


@st.composite
def people(draw) -> PersonSkeleton:
    header = Header(stamp=draw(stamps()), frame_id="camera")
    return PersonSkeleton(
        header=header,
        person_id=draw(st.integers(-(2**31), 2**31 - 1) | st.integers(0, 6)),
        body_layout=draw(LAYOUTS),
        space=draw(st.sampled_from(["image", "world", "pixels"])),
        image_width=draw(st.sampled_from([0, 640, 2**32 - 1])),
        image_height=draw(st.sampled_from([0, 480, 1])),
        body=draw(arrays()),
        left_hand=draw(arrays(st.sampled_from([0, 84, 83]))),
        right_hand=draw(arrays(st.sampled_from([0, 84, 85]))),
        left_hand_present=draw(st.booleans()),
        right_hand_present=draw(st.booleans()),
    )


@st.composite
def valid_people(draw, fuzzed: bool = True) -> PersonSkeleton:
    """A skeleton the tiny model takes (MediaPipe layout, image space, values in [0, 1]), with
    (``fuzzed``) at most one field replaced by fuzz: drawn field by field, as in :func:`people`,
    hardly any message ever reached the model."""
    stamp = Time(sec=draw(st.integers(1, 10**6)), nanosec=draw(st.integers(0, 999_999_999)))
    person = PersonSkeleton(
        header=Header(stamp=stamp, frame_id="camera"),
        person_id=draw(st.integers(0, 6)),
        body_layout="mediapipe33",
        space="image",
        image_width=640,
        image_height=480,
        body=np.nan_to_num(draw(arrays(st.just(132)))).clip(0.0 if fuzzed else 1e-3, 1.0),  # someone seen
        left_hand=np.nan_to_num(draw(arrays(st.just(84)))).clip(0.0, 1.0),
        left_hand_present=True,
    )
    field = (
        draw(st.sampled_from(["", "body", "left_hand", "body_layout", "space", "header"])) if fuzzed else ""
    )
    if field in ("body", "left_hand"):
        setattr(person, field, draw(arrays()))
    elif field == "body_layout":
        person.body_layout = draw(LAYOUTS)
    elif field == "space":
        person.space = "world"
    elif field == "header":
        person.header = Header(stamp=draw(stamps()))
    return person


@st.composite
def messages(draw, persons: st.SearchStrategy | None = None) -> PersonSkeletonArray:
    persons = draw(st.lists(people() if persons is None else persons, max_size=6))
    header = persons[0].header if persons else Header(stamp=draw(stamps()))
    return PersonSkeletonArray(header=header, persons=persons)


@st.composite
def batches(draw) -> list[PersonSkeletonArray]:
    """A first message the model takes whole, someone seen in it (so every example reaches
    recognition: a frame of nobody is left out), then messages of valid people with one field
    fuzzed, and of people fuzzed field by field."""
    first = draw(messages(valid_people(fuzzed=False)).filter(lambda m: len(m.persons) > 0))
    return [first, *draw(st.lists(st.one_of(messages(valid_people()), messages()), max_size=7))]


@pytest.fixture(scope="module")
def context():
    """One rclpy context for the module: cheap to share, and it holds no recognition state."""
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.shutdown(context=context)


class ModelOnceRecognizer(RecognizerNode):
    """The real recognizer node, but each model file is loaded once per test run (the classifier
    keeps no state): a fresh node per example then costs milliseconds, not an ONNX session."""

    loaded: ClassVar[dict[str, OnnxWindowClassifier]] = {}

    def _load(self, model: str) -> OnnxWindowClassifier:
        if model not in self.loaded:
            self.loaded[model] = super()._load(model)
        return self.loaded[model]


@contextmanager
def fresh_node(context, model) -> Iterator[RecognizerNode]:
    """A new active recognizer for one example: windows, error counts, drop counters and the memory
    of stamped input start empty (a lifecycle cleanup would keep the last two), so a failure
    depends on its own messages only and reproduces while Hypothesis shrinks it."""
    overrides = [
        Parameter("model", value=str(model)),
        Parameter("stride_seconds", value=0.0),
        Parameter("min_seconds", value=0.0),
        Parameter("autostart", value=False),
    ]
    recognizer = ModelOnceRecognizer(context=context, parameter_overrides=overrides)
    try:
        assert recognizer.trigger_configure() == TransitionCallbackReturn.SUCCESS, recognizer.transition_error
        assert recognizer.trigger_activate() == TransitionCallbackReturn.SUCCESS, recognizer.transition_error
        yield recognizer
    finally:
        recognizer.destroy_node()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    # Messages carry whole skeleton arrays: large inputs are the point, so are not a health problem.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
    **CI_SETTINGS,
)
@given(batch=batches())
def test_no_message_kills_the_node_or_makes_a_non_finite_action(context, tiny_model, batch):
    with fresh_node(context, tiny_model) as node:
        check_batch(node, batch)


def check_batch(node: RecognizerNode, batch: list[PersonSkeletonArray]) -> None:
    """Hand ``batch`` to the node's skeleton callback, each message as a subscriber receives it
    (serialized as DDS carries it and read back; examples by the thousand are too many to publish
    one by one); then nothing failed and all stays bounded."""
    from rclpy.serialization import deserialize_message, serialize_message

    published: list[Action] = []
    original = node.safe_publish

    def record(publisher, msg) -> bool:
        if isinstance(msg, Action):
            published.append(msg)
        return original(publisher, msg)

    node.safe_publish = record
    try:
        callback = node.guarded(node._on_skeletons)
        for msg in batch:
            callback(deserialize_message(serialize_message(msg), PersonSkeletonArray))
    finally:
        node.safe_publish = original
    assert node.callback_errors == 0, node.last_callback_error
    assert published, "the first message reaches the model: what the checks below look at"
    assert all(np.isfinite(a.confidence) and np.all(np.isfinite(a.top_scores)) for a in published)
    recognizer = node.recognizer
    assert len(recognizer.windows) <= recognizer.windows.max_persons
    assert len(recognizer.person_states()) <= recognizer.windows.max_persons
    assert len(node.drops) <= 2 * recognizer.windows.max_persons + 6
    for _, buffer in recognizer.windows.items():
        assert len(buffer) <= buffer.maxlen
