"""The skeleton data contract: validation, stacking and the .npz file format."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bharnet_ros.core.skeleton import TIME_LIMIT, SkeletonError, SkeletonFrame, SkeletonSequence


def frame(t: float, value: float = 0.5) -> SkeletonFrame:
    hands = np.full((2, 21, 4), value, np.float32)
    return SkeletonFrame(t, np.full((33, 4), value, np.float32), hands, np.array([True, False]), 4)


def test_empty_frame_keeps_the_timeline():
    empty = SkeletonFrame.empty(1.5, layout="ntu25")
    assert empty.body.shape == (25, 4)
    assert not empty.body_present
    assert not empty.hand_present.any()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"body": np.zeros((25, 4))}, "mediapipe33 contract"),
        ({"body": np.zeros((33, 3))}, "mediapipe33 contract"),
        ({"hands": np.zeros((2, 20, 4))}, "hands"),
        ({"body": np.full((33, 4), np.nan)}, "NaN or infinite values in its body"),
        ({"hands": np.full((2, 21, 4), np.inf)}, "NaN or infinite values in its hands"),
        ({"hands": np.full((2, 21, 4), 1e38)}, "hand coordinates beyond ±10 are not plausible"),
        ({"body": np.zeros((33, 4)), "layout": "coco17"}, "not a body layout"),
        ({"body": np.zeros((21, 4)), "layout": "hand21"}, "not a body layout"),
        ({"body": np.full((33, 4), 1e38)}, "body coordinates beyond ±10 are not plausible in image space"),
        ({"body": np.full((25, 4), 3e30), "layout": "ntu25", "space": "world"}, "plausible"),
        ({"body": np.full((33, 4), 2.0)}, "scores must lie in"),
        ({"body": np.zeros((33, 4)), "space": "pixels"}, "coordinate space"),
    ],
)
def test_contract_violations_are_named(kwargs, message):
    kwargs.setdefault("body", np.zeros((33, 4)))
    with pytest.raises(SkeletonError, match=message):
        SkeletonFrame(0.0, **kwargs)


def test_sequence_stacks_frames_and_gives_them_back():
    sequence = SkeletonSequence.from_frames([frame(0.0), frame(0.1, 0.2)], image_size=(640, 480))
    assert len(sequence) == 2
    assert sequence.body.shape == (2, 33, 4)
    assert sequence.hands.shape == (2, 2, 21, 4)
    back = sequence.frame(1)
    assert back.timestamp == pytest.approx(0.1)
    assert back.person_id == 4
    np.testing.assert_array_equal(back.body, frame(0.1, 0.2).body)


def test_sequence_refuses_time_going_backwards_and_mixed_layouts():
    with pytest.raises(SkeletonError, match="backwards"):
        SkeletonSequence.from_frames([frame(1.0), frame(0.5)])
    with pytest.raises(SkeletonError, match="mix"):
        SkeletonSequence.from_frames([frame(0.0), SkeletonFrame.empty(0.1, layout="ntu25")])
    with pytest.raises(SkeletonError, match="zero frames"):
        SkeletonSequence.from_frames([])


def test_file_round_trip_is_exact_and_pickle_free(tmp_path):
    sequence = SkeletonSequence.from_frames([frame(0.0), frame(1 / 30, 0.3)], image_size=(320, 240))
    path = sequence.save(tmp_path / "clip.npz")
    with np.load(path, allow_pickle=False) as data:  # would raise if anything were pickled
        assert int(data["format_version"]) == 1
    loaded = SkeletonSequence.load(path)
    np.testing.assert_array_equal(loaded.body, sequence.body)
    np.testing.assert_array_equal(loaded.hands, sequence.hands)
    np.testing.assert_array_equal(loaded.hand_present, sequence.hand_present)
    np.testing.assert_array_equal(loaded.timestamps, sequence.timestamps)
    assert (loaded.layout, loaded.space, loaded.image_size, loaded.person_id) == (
        "mediapipe33", "image", (320, 240), 4,
    )  # fmt: skip


def test_newer_file_versions_are_refused(tmp_path):
    path = SkeletonSequence.from_frames([frame(0.0)]).save(tmp_path / "clip.npz")
    with np.load(path) as data:
        arrays = dict(data)
    arrays["format_version"] = np.int32(99)
    np.savez(path, **arrays)
    with pytest.raises(SkeletonError, match="newer"):
        SkeletonSequence.load(path)


def test_hands_marked_present_but_empty_count_as_absent():
    hands = np.zeros((2, 21, 4), np.float32)
    hands[1, :, :3] = 0.5
    hands[1, :, 3] = 1.0
    frame = SkeletonFrame(0.0, np.zeros((33, 4)), hands, np.array([True, True]))
    assert frame.hand_present.tolist() == [False, True]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timestamp": None}, "not a number of seconds"),
        ({"timestamp": "soon"}, "not a number of seconds"),
        ({"timestamp": float("inf")}, "not a finite number"),
        ({"image_size": None}, r"must be \(width, height\)"),
        ({"image_size": (640,)}, r"must be \(width, height\)"),
        ({"image_size": (640, 480, 3)}, r"must be \(width, height\)"),
        ({"image_size": (640.5, 480)}, "whole number"),
        ({"image_size": (-640, 480)}, "from 0"),
        ({"image_size": (2**31, 480)}, "from 0"),
        ({"image_size": (2**31 - 1, 1)}, "no camera image"),  # x would be multiplied by 2^31
        ({"image_size": (1, 101)}, "no camera image"),
        ({"person_id": 1.5}, "whole number"),
        ({"person_id": "7"}, "whole number"),
        ({"person_id": float("nan")}, "whole number"),
        ({"person_id": 2**31}, "int32"),
        ({"person_id": -(2**31) - 1}, "int32"),
        ({"body": np.full((33, 4), "x")}, "not an array of numbers"),
        ({"body": [[0.0, 0.0], [0.0]]}, "not an array of numbers"),
    ],
)
def test_fields_that_are_no_contract_values_are_refused_by_name(kwargs, message):
    """A careless caller gets a SkeletonError naming the field, not an IndexError or TypeError."""
    kwargs = {"timestamp": 0.0, "body": np.zeros((33, 4)), **kwargs}
    with pytest.raises(SkeletonError, match=message):
        SkeletonFrame(**kwargs)


def test_integer_fields_take_numpy_integers_and_the_extremes_of_their_range():
    edge = SkeletonFrame(0.0, np.zeros((33, 4)), person_id=np.int64(-(2**31)), image_size=(2**31 - 1, 0))
    assert type(edge.person_id) is int
    assert edge.person_id == -(2**31)
    assert edge.image_size == (2**31 - 1, 0)
    sequence = SkeletonSequence.from_frames([edge])
    with pytest.raises(SkeletonError, match="image_size"):
        SkeletonSequence(
            sequence.timestamps, sequence.body, sequence.hands, sequence.hand_present, image_size=(-1, 1)
        )


def test_validate_checks_a_frame_again_after_it_was_changed():
    changed = frame(0.0)
    changed.validate()  # a sound frame passes again
    changed.body[0, 3] = 2.0  # a score beyond [0, 1], written after the frame was built
    with pytest.raises(SkeletonError, match="scores"):
        changed.validate()
    changed = frame(0.0)
    changed.hands = np.zeros((3, 21, 4))
    with pytest.raises(SkeletonError, match="hands has shape"):
        changed.validate()


coordinates = st.one_of(
    st.floats(width=32),  # NaN, infinities, FLT_MAX and subnormals included
    st.sampled_from([0.0, 1e-40, 0.5, 1.0, 10.0, 10.000001, -10.0, 3.4028235e38]),
)


@settings(max_examples=40, deadline=None)
@given(
    timestamp=st.one_of(st.floats(), st.sampled_from([1e18, -1e18, 1e-12, 0.0])),
    value=coordinates,
    joint=st.integers(0, 32),
    person_id=st.one_of(st.integers(), st.floats()),
    image_size=st.tuples(st.integers(-(2**40), 2**40), st.integers(-(2**40), 2**40)),
)
def test_any_frame_is_either_refused_or_within_the_contract(timestamp, value, joint, person_id, image_size):
    body = np.zeros((33, 4), np.float32)
    body[joint] = value
    try:
        made = SkeletonFrame(timestamp, body, person_id=person_id, image_size=image_size)
    except SkeletonError:
        return
    assert np.isfinite(made.timestamp)
    assert abs(made.timestamp) <= TIME_LIMIT  # frames 1/30 s apart stay apart
    assert np.abs(made.body[:, :3]).max() <= 10.0
    assert 0.0 <= made.body[:, 3].min() <= made.body[:, 3].max() <= 1.0
    assert all(0 <= side < 2**31 for side in made.image_size)
    assert isinstance(made.person_id, int)


def test_a_sequence_clears_hands_marked_present_but_empty_as_a_frame_does():
    """Files and datasets build sequences, not frames: an empty hand flagged present reached the
    model as a detection there, and as absent live."""
    hands = np.zeros((3, 2, 21, 4), np.float32)
    hands[:, 1, :, :3] = 0.5
    present = np.ones((3, 2), bool)
    sequence = SkeletonSequence(np.arange(3.0), np.zeros((3, 33, 4)), hands, present)
    assert sequence.hand_present.tolist() == [[False, True]] * 3
    live = SkeletonSequence.from_frames([sequence.frame(t) for t in range(3)])
    np.testing.assert_array_equal(live.hand_present, sequence.hand_present)


def test_a_hand_with_a_joint_not_observed_is_absent():
    """An OpenPose-style publisher sends 0 for a fingertip it did not find: the zeros were normalised
    as a point at the image's corner, 7 shoulder widths away, and flipped the decision."""
    hands = np.full((2, 21, 4), 0.4, np.float32)
    hands[1, 4] = 0.0  # the right thumb tip, not observed
    hands[0, 0, 2] = 0.0  # the left wrist's relative depth, 0 as MediaPipe gives it: observed
    made = SkeletonFrame(0.0, np.full((33, 4), 0.5, np.float32), hands, np.ones(2, bool))
    assert made.hand_present.tolist() == [True, False]


def saved_arrays(tmp_path) -> dict:
    """The arrays of a sound sequence file (hands present in slot 0)."""
    sequence = SkeletonSequence.from_frames([frame(0.0), frame(0.1)], image_size=(640, 480))
    path = sequence.save(tmp_path / "s.npz")
    with np.load(path) as data:
        return dict(data)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"person_id": np.float64(3.9)}, "person_id must be a whole number"),
        ({"person_id": np.float64(3.0)}, "person_id must be a whole number"),
        ({"person_id": np.array([7])}, "person_id must be a single value"),
        ({"format_version": np.str_("x")}, "format_version must be a whole number"),
        ({"format_version": np.array([1])}, "format_version must be a single value"),
        ({"format_version": np.int32(-5)}, "no version"),
        ({"format_version": np.int32(0)}, "no version"),
        ({"space": None}, r"missing arrays \['space'\]"),
        ({"timestamps": None, "layout": None}, r"missing arrays \['timestamps', 'layout'\]"),
        ({"layout": np.array(["mediapipe33"])}, "layout must be a single value"),
        ({"layout": np.int32(3)}, "layout must be text"),
        ({"image_size": np.array([640.5, 480.0])}, "whole number"),
        ({"image_size": np.array([640])}, r"must be \(width, height\)"),
        ({"hand_present": np.full((2, 2), 0.2)}, "hand_present must hold bools"),
        ({"hand_present": np.full((2, 2), 7)}, "hand_present must hold bools"),
        ({"body": np.full((2, 33, 4), "0.5")}, "body holds <U3 values"),
        ({"timestamps": np.array([0, 1j])}, "timestamps holds complex128"),
        ({"person_id": np.array(None, dtype=object)}, "no plain numbers or text"),
        ({"body": np.float32(0)}, r"body has shape \(\), the mediapipe33 contract needs"),  # a TypeError
    ],
)
def test_loading_is_as_strict_as_a_live_frame(tmp_path, change, message):
    """A float id was truncated (3.9 -> 3), a one-element array taken for a number, and a missing
    key or a bad version raised KeyError or a plain ValueError instead of SkeletonError."""
    arrays = {key: value for key, value in {**saved_arrays(tmp_path), **change}.items() if value is not None}
    path = tmp_path / "odd.npz"
    np.savez(path, **arrays)
    with pytest.raises(SkeletonError, match=message) as caught:
        SkeletonSequence.load(path)
    assert str(path) in str(caught.value)


def test_loading_takes_flags_stored_as_0_and_1_and_clears_empty_present_hands(tmp_path):
    arrays = saved_arrays(tmp_path)
    arrays["hand_present"] = np.array([[1, 1], [0, 1]], np.uint8)  # slot 1 holds no hand
    arrays["hands"][:, 1] = 0.0
    np.savez(tmp_path / "flags.npz", **arrays)
    loaded = SkeletonSequence.load(tmp_path / "flags.npz")
    assert loaded.hand_present.tolist() == [[True, False], [False, False]]
    assert (loaded.person_id, loaded.image_size) == (4, (640, 480))
    assert type(loaded.person_id) is int


def test_a_single_array_file_is_refused_as_no_sequence(tmp_path):
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(SkeletonError, match="single array"):
        SkeletonSequence.load(tmp_path / "one.npy")


def test_stamps_too_large_to_tell_frames_apart_are_refused_in_frames_and_sequences():
    """At 1e17 s, frames 1/30 s apart round to one float64 instant: every frame was a duplicate."""
    with pytest.raises(SkeletonError, match="beyond"):
        frame(1e17)
    with pytest.raises(SkeletonError, match="beyond"):
        SkeletonSequence(
            np.array([1e17, 1e17 + 1]), np.zeros((2, 33, 4)), np.zeros((2, 2, 21, 4)), np.zeros((2, 2))
        )
    assert frame(TIME_LIMIT).timestamp == TIME_LIMIT  # the bound itself is a stamp


def test_a_sequence_file_that_would_unpack_to_far_more_than_it_holds_is_refused_unread(tmp_path):
    """A 1 MB file of zeros dropped among the clips of `import videos` took 1 GB of memory."""
    frames = 200_000  # 105 MB of zeros, a few hundred kB packed
    sequence = SkeletonSequence(
        np.arange(2) / 30.0, np.zeros((2, 33, 4)), np.zeros((2, 2, 21, 4)), np.zeros((2, 2), bool)
    )
    path = sequence.save(tmp_path / "fine.npz")
    assert len(SkeletonSequence.load(path)) == 2
    with np.load(path, allow_pickle=False) as raw:
        arrays = {key: raw[key] for key in raw.files}
    arrays["body"] = np.zeros((frames, 33, 4), np.float32)
    np.savez_compressed(tmp_path / "bomb.npz", **arrays)
    with pytest.raises(SkeletonError, match="bomb.npz: would unpack .* MiB into .* GiB of arrays, far more"):
        SkeletonSequence.load(tmp_path / "bomb.npz")


def test_arrays_of_other_lengths_than_the_body_are_named_as_such():
    with pytest.raises(SkeletonError, match="hands holds 1 frames and body 2; give both the same frames"):
        SkeletonSequence(np.arange(2.0), np.zeros((2, 33, 4)), np.zeros((1, 2, 21, 4)), np.zeros((2, 2)))
