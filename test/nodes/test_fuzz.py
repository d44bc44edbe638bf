"""Property-based fuzzing of the skeleton message path: whatever arrives, the node survives.

Hypothesis builds PersonSkeletonArray messages with random layouts, array lengths, values (NaN,
infinities, FLT_MAX, denormals), person ids and stamps, and hands each one to the real recognizer
node's subscription callback with a real ONNX model. After every message: no callback failed,
every published confidence is finite, and what the node keeps per person stays bounded.

``make test`` runs a short search (``BHARNET_FUZZ_EXAMPLES``, default 60); ``make fuzz`` a long one.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rclpy.parameter import Parameter
from std_msgs.msg import Header

from bharnet_ros.msg import Action, PersonSkeleton, PersonSkeletonArray
from bharnet_ros.nodes.recognizer_node import RecognizerNode

EXAMPLES = int(os.environ.get("BHARNET_FUZZ_EXAMPLES", "60"))
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
def messages(draw) -> PersonSkeletonArray:
    persons = draw(st.lists(people(), max_size=6))
    header = persons[0].header if persons else Header(stamp=draw(stamps()))
    return PersonSkeletonArray(header=header, persons=persons)


@pytest.fixture(scope="module")
def node(tiny_model):
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context)
    overrides = [
        Parameter("model", value=str(tiny_model)),
        Parameter("stride_seconds", value=0.0),
        Parameter("min_seconds", value=0.0),
        Parameter("autostart", value=False),
    ]
    recognizer = RecognizerNode(context=context, parameter_overrides=overrides)
    recognizer.trigger_configure()
    recognizer.trigger_activate()
    yield recognizer
    recognizer.destroy_node()
    rclpy.shutdown(context=context)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(messages(), min_size=1, max_size=8))
def test_no_message_kills_the_node_or_makes_a_non_finite_action(node, batch):
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
            callback(msg)
    finally:
        node.safe_publish = original
    assert node.callback_errors == 0, node.last_callback_error
    assert all(np.isfinite(a.confidence) and np.all(np.isfinite(a.top_scores)) for a in published)
    recognizer = node.recognizer
    assert len(recognizer.windows) <= recognizer.windows.max_persons
    assert len(recognizer.person_states()) <= recognizer.windows.max_persons
    assert len(node.drops) <= 2 * recognizer.windows.max_persons + 6
    for _, buffer in recognizer.windows.items():
        assert len(buffer) <= buffer.maxlen
