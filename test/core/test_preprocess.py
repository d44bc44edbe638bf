"""The shared preprocessing: normalisation invariants, absent data, layouts, config round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bharnet_ros.core.layouts import MP33, NTU25
from bharnet_ros.core.modalities import MODALITIES
from bharnet_ros.core.preprocess import (
    LEAST_SIZE_SHARE,
    PreprocessConfig,
    body_centre_and_size,
    preprocess_arrays,
    preprocess_sequence,
)
from bharnet_ros.core.skeleton import SkeletonSequence

FRAMES = 16


def world_sequence(seed: int = 0, frames: int = FRAMES) -> dict[str, np.ndarray]:
    """Random NTU-layout world-space arrays with one absent joint and a hand missing half the time."""
    rng = np.random.default_rng(seed)
    body = rng.normal(0.0, 0.3, (frames, NTU25.num_joints, 4)).astype(np.float32)
    body[..., 3] = 1.0
    body[:, NTU25.index("left_foot")] = 0.0  # never observed
    hands = rng.normal(0.0, 0.3, (frames, 2, 21, 4)).astype(np.float32)
    present = np.ones((frames, 2), bool)
    present[::2, 0] = False
    hands[~present] = 0.0
    return {"body": body, "hands": hands, "hand_present": present}


def run(arrays: dict[str, np.ndarray], config: PreprocessConfig, layout: str = "ntu25", space: str = "world"):
    return preprocess_arrays(arrays["body"], arrays["hands"], arrays["hand_present"], layout, space, config)


def transformed(arrays: dict[str, np.ndarray], scale: float, offset: np.ndarray) -> dict[str, np.ndarray]:
    """Same skeleton scaled and moved; unobserved joints and absent hands stay zero."""
    out = {k: v.copy() for k, v in arrays.items()}
    for key in ("body", "hands"):
        observed = np.any(arrays[key] != 0, axis=-1)
        out[key][..., :3] = np.where(observed[..., None], arrays[key][..., :3] * scale + offset, 0.0)
    return out


@pytest.mark.parametrize("modality", MODALITIES)
@pytest.mark.parametrize("hand_frame", ["body", "wrist"])
def test_translation_and_scale_invariance(modality, hand_frame):
    config = PreprocessConfig(frames=FRAMES, modality=modality, hand_frame=hand_frame)
    arrays = world_sequence()
    reference = run(arrays, config)
    moved = run(transformed(arrays, 2.5, np.array([1.0, -3.0, 0.5], np.float32)), config)
    np.testing.assert_allclose(moved.body, reference.body, atol=1e-5)
    np.testing.assert_allclose(moved.hand, reference.hand, atol=1e-5)


def test_centre_is_mid_shoulder_and_unit_is_shoulder_width():
    out = run(world_sequence(), PreprocessConfig(frames=FRAMES))
    left, right = NTU25.index("left_shoulder"), NTU25.index("right_shoulder")
    body = out.body[:, :, :, 0]  # (C, T, V)
    mid = 0.5 * (body[:, :, left] + body[:, :, right])
    np.testing.assert_allclose(mid.mean(axis=1), 0.0, atol=1e-5)
    width = np.linalg.norm(body[:, :, left] - body[:, :, right], axis=0)
    assert width.mean() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("modality", MODALITIES)
def test_absent_hands_joints_and_dummies_stay_zero(modality):
    arrays = world_sequence()
    out = run(arrays, PreprocessConfig(frames=FRAMES, modality=modality))
    assert out.body.dtype == out.hand.dtype == np.float32
    assert not out.hand[:, ::2, :, 0].any()  # left hand absent in even frames
    assert not out.hand[:, :, 21:].any()  # dummy vertices
    assert not out.body[:, :, NTU25.index("left_foot")].any()
    np.testing.assert_array_equal(out.hand_mask, np.ones(FRAMES, np.float32))  # right hand always there
    assert out.hand[..., 1].any()
    if "motion" in modality:  # the left hand is never present in two consecutive frames
        assert not out.hand[..., 0].any()
    else:
        assert out.hand[:, 1::2, :21, 0].any()


def test_frames_without_any_hand_have_mask_zero():
    arrays = world_sequence()
    arrays["hand_present"][:4] = False
    out = run(arrays, PreprocessConfig(frames=FRAMES))
    np.testing.assert_array_equal(out.hand_mask[:4], 0.0)
    assert not out.hand[:, :4].any()


def test_wrist_frame_puts_present_wrists_at_origin():
    arrays = world_sequence()
    out = run(arrays, PreprocessConfig(frames=FRAMES, hand_frame="wrist"))
    np.testing.assert_allclose(out.hand[:, :, 0, :], 0.0, atol=1e-6)
    assert np.abs(out.hand[:, 1::2, 1:21, 0]).max() > 0


def mediapipe_sequence(image_size: tuple[int, int] = (640, 480)) -> SkeletonSequence:
    rng = np.random.default_rng(1)
    body = rng.uniform(0.2, 0.8, (FRAMES, MP33.num_joints, 4)).astype(np.float32)
    hands = rng.uniform(0.2, 0.8, (FRAMES, 2, 21, 4)).astype(np.float32)
    present = np.ones((FRAMES, 2), bool)
    return SkeletonSequence(np.arange(FRAMES) / 30, body, hands, present, image_size=image_size)


@pytest.mark.parametrize(("layout", "vertices"), [("ntu25", 25), ("mediapipe33", 33)])
def test_mediapipe_input_packs_for_either_body_layout(layout, vertices):
    out = preprocess_sequence(mediapipe_sequence(), PreprocessConfig(body_layout=layout, frames=FRAMES))
    assert out.body.shape == (3, FRAMES, vertices, 1)
    assert out.hand.shape == (3, FRAMES, vertices, 2)
    assert out.hand_mask.shape == (FRAMES,)
    batched = out.batched()
    assert batched["body"].shape == (1, 3, FRAMES, vertices, 1)


def test_scores_kept_with_four_channels_and_second_person_slot_zero():
    config = PreprocessConfig(frames=FRAMES, channels=4, num_persons=2)
    out = preprocess_sequence(mediapipe_sequence(), config)
    assert out.body.shape == (4, FRAMES, 25, 2)
    assert not out.body[..., 1].any()


def test_ntu_skeleton_cannot_feed_a_mediapipe_model():
    with pytest.raises(ValueError, match="cannot feed"):
        run(world_sequence(), PreprocessConfig(body_layout="mediapipe33"))


def test_skeletons_of_another_space_than_the_training_data_cannot_feed_the_model():
    """Metres read as fractions of the image (or the reverse) would be classified as if they were."""
    with pytest.raises(ValueError, match="cannot feed world-space skeletons to a model trained on image"):
        run(world_sequence(), PreprocessConfig(frames=FRAMES, space="image"))
    with pytest.raises(ValueError, match="cannot feed image-space skeletons to a model trained on world"):
        preprocess_sequence(mediapipe_sequence(), PreprocessConfig(frames=FRAMES, space="world"))
    same = run(world_sequence(), PreprocessConfig(frames=FRAMES, space="world"))
    unrecorded = run(world_sequence(), PreprocessConfig(frames=FRAMES))
    np.testing.assert_array_equal(same.body, unrecorded.body)


def test_aspect_correction_uses_image_size():
    """A square in pixels is a square after correction, whatever the image's aspect ratio."""
    sequence = mediapipe_sequence(image_size=(640, 480))
    config = PreprocessConfig(body_layout="mediapipe33", frames=FRAMES, normalise=False)
    corrected = preprocess_sequence(sequence, config)
    plain = preprocess_sequence(sequence, config, image_size=(0, 0))
    np.testing.assert_allclose(corrected.body[0], plain.body[0] * 640 / 480, rtol=1e-6)
    np.testing.assert_allclose(corrected.body[1], plain.body[1])
    np.testing.assert_allclose(corrected.body[2], plain.body[2] * 640 / 480, rtol=1e-6)  # z has x's scale


def test_config_round_trips_through_json():
    config = PreprocessConfig(body_layout="mediapipe33", frames=32, modality="bone", hand_frame="wrist")
    data = json.loads(json.dumps(config.to_dict()))
    assert PreprocessConfig.from_dict(data) == config


def test_config_refuses_unknown_keys_newer_versions_and_bad_values():
    data = PreprocessConfig().to_dict()
    with pytest.raises(ValueError, match="unknown keys"):
        PreprocessConfig.from_dict({**data, "colour": 1})
    with pytest.raises(ValueError, match="newer"):
        PreprocessConfig.from_dict({**data, "version": 99})
    with pytest.raises(ValueError, match="modality"):
        PreprocessConfig(modality="velocity")


def test_frames_with_an_occluded_shoulder_do_not_move_the_centre_or_the_unit():
    """Centre and body size come only from frames where both shoulders were seen."""
    arrays = world_sequence()
    left, right = NTU25.index("left_shoulder"), NTU25.index("right_shoulder")
    both = np.ones(FRAMES, bool)
    both[3::4] = False
    arrays["body"][~both, left] = 0.0  # occluded: not observed in those frames
    out = run(arrays, PreprocessConfig(frames=FRAMES))
    body = out.body[:, :, :, 0]
    mid = 0.5 * (body[:, both, left] + body[:, both, right])
    np.testing.assert_allclose(mid.mean(axis=1), 0.0, atol=1e-5)
    width = np.linalg.norm(body[:, both, left] - body[:, both, right], axis=0)
    assert width.mean() == pytest.approx(1.0, abs=1e-5)
    assert np.all(body[:, ~both, left] == 0.0)  # the occluded joint stays absent


def image_arrays(seed: int = 2) -> dict[str, np.ndarray]:
    """MediaPipe image-space arrays with distinct x, y, z, score; the left hand absent in frame 0."""
    rng = np.random.default_rng(seed)
    body = rng.uniform(0.2, 0.8, (FRAMES, MP33.num_joints, 4)).astype(np.float32)
    hands = rng.uniform(-0.1, 0.1, (FRAMES, 2, 21, 4)).astype(np.float32)
    hands[..., 3] = 0.9
    present = np.ones((FRAMES, 2), bool)
    present[0, 0] = False
    hands[~present] = 0.0
    return {"body": body, "hands": hands, "hand_present": present}


def image_run(arrays: dict[str, np.ndarray], image_size: tuple[int, int] = (0, 0), **options):
    config = PreprocessConfig(
        body_layout="mediapipe33", frames=FRAMES, normalise=False, channels=4, **options
    )
    return preprocess_arrays(
        arrays["body"], arrays["hands"], arrays["hand_present"], "mediapipe33", "image", config, image_size
    )


def test_hand_depth_is_anchored_on_the_body_wrist():
    """MediaPipe hand z is wrist-relative; in image space each present hand gets its body wrist's z."""
    arrays = image_arrays()
    out = image_run(arrays)
    for slot, wrist in enumerate((MP33.index("left_wrist"), MP33.index("right_wrist"))):
        present = arrays["hand_present"][:, slot]
        hand = out.hand[..., slot][:, present, :21]  # (C, T', 21)
        given = arrays["hands"][present, slot].transpose(2, 0, 1)
        depth = arrays["body"][present, wrist, 2][:, None]
        np.testing.assert_allclose(hand[2], given[2] + depth, rtol=1e-6)
        np.testing.assert_array_equal(hand[:2], given[:2])
        np.testing.assert_array_equal(hand[3], 0.9)  # the score is left alone
    assert not out.hand[:, 0, :, 0].any()  # the absent hand gets no depth


def test_world_space_hands_are_not_re_anchored():
    arrays = image_arrays()
    config = PreprocessConfig(body_layout="mediapipe33", frames=FRAMES, normalise=False, channels=4)
    out = preprocess_arrays(
        arrays["body"], arrays["hands"], arrays["hand_present"], "mediapipe33", "world", config
    )
    np.testing.assert_allclose(out.hand[:, 1:, :21, 0], arrays["hands"][1:, 0].transpose(2, 0, 1))


@pytest.mark.parametrize("image_size", [(640, 0), (0, 480), (-640, 480), (640, -480)])
def test_aspect_correction_needs_both_sides_of_the_image(image_size):
    arrays = image_arrays()
    np.testing.assert_array_equal(image_run(arrays, image_size).body, image_run(arrays).body)


@pytest.mark.parametrize("image_size", [(1, 480), (640, 1)])
def test_aspect_correction_scales_x_and_z_of_body_and_hands_only(image_size):
    arrays = image_arrays()
    factor = np.float32(image_size[0] / image_size[1])
    plain, corrected = image_run(arrays), image_run(arrays, image_size)
    for name in ("body", "hand"):
        before, after = getattr(plain, name), getattr(corrected, name)
        np.testing.assert_allclose(after[[0, 2]], before[[0, 2]] * factor, rtol=1e-6)
        np.testing.assert_array_equal(after[[1, 3]], before[[1, 3]])


def test_aspect_correction_can_be_turned_off():
    arrays = image_arrays()
    off = image_run(arrays, (640, 480), aspect_correction=False)
    np.testing.assert_array_equal(off.body, image_run(arrays).body)


def test_detected_hands_refine_the_ntu_hand_joints():
    """A MediaPipe body fed to an NTU model takes its hand tips from the detected hands."""
    arrays = image_arrays()
    config = PreprocessConfig(frames=FRAMES, normalise=False)
    tip = NTU25.index("right_hand_tip")

    def body_of(hands):
        return preprocess_arrays(
            arrays["body"], hands, arrays["hand_present"], "mediapipe33", "world", config
        ).body

    moved = arrays["hands"].copy()
    moved[:, 1, :, 0] += 0.05
    assert np.abs(body_of(moved)[0, :, tip] - body_of(arrays["hands"])[0, :, tip]).min() > 0.01


@pytest.mark.parametrize("modality", ["bone", "bone_motion"])
def test_bone_from_an_absent_parent_is_zero(modality):
    arrays = world_sequence()
    arrays["body"][:, NTU25.index("left_wrist")] = 0.0  # parent of the observed left hand joint
    out = run(arrays, PreprocessConfig(frames=FRAMES, modality=modality))
    assert not out.body[:, :, NTU25.index("left_hand")].any()
    assert out.body[:, 1:-1, NTU25.index("right_hand")].any()


@pytest.mark.parametrize("modality", ["joint_motion", "bone_motion"])
def test_motion_needs_the_joint_in_both_frames(modality):
    arrays = world_sequence()
    knee = NTU25.index("left_knee")
    arrays["body"][0, knee] = 0.0  # seen from frame 1 on
    arrays["body"][9, knee] = 0.0
    out = run(arrays, PreprocessConfig(frames=FRAMES, modality=modality))
    moving = np.abs(out.body[:, :, knee, 0]).sum(axis=0) > 0
    expected = np.ones(FRAMES, bool)
    expected[[0, 8, 9, FRAMES - 1]] = False  # frames that touch an absent one, and the last
    np.testing.assert_array_equal(moving, expected)


def test_hands_are_finite_and_in_the_body_frame():
    """Hands share the body's centre and unit: a hand joint on the right shoulder lands on it."""
    arrays = world_sequence()
    shoulder = NTU25.index("right_shoulder")
    arrays["hands"][1, 1, 5] = arrays["body"][1, shoulder]
    out = run(arrays, PreprocessConfig(frames=FRAMES))
    assert np.isfinite(out.hand).all()
    np.testing.assert_allclose(out.hand[:, 1, 5, 1], out.body[:, 1, shoulder, 0], atol=1e-6)


def test_absent_hands_are_zero_even_when_their_slot_holds_data():
    arrays = world_sequence()
    arrays["hands"][~arrays["hand_present"]] = 5.0  # stale numbers in a slot marked absent
    for hand_frame in ("body", "wrist"):
        out = run(arrays, PreprocessConfig(frames=FRAMES, hand_frame=hand_frame))
        assert not out.hand[:, ::2, :, 0].any()


def test_hand_presence_may_be_given_as_zeros_and_ones():
    arrays = world_sequence()
    as_int = {**arrays, "hand_present": arrays["hand_present"].astype(np.int64)}
    np.testing.assert_array_equal(
        run(as_int, PreprocessConfig(frames=FRAMES)).hand, run(arrays, PreprocessConfig(frames=FRAMES)).hand
    )


def test_four_channels_keep_the_hand_score():
    out = run(world_sequence(), PreprocessConfig(frames=FRAMES, channels=4))
    assert out.hand.shape == (4, FRAMES, 25, 2)
    assert out.hand[3, 1::2, :21, 0].any()


def test_batched_keys_are_the_onnx_input_names():
    out = run(world_sequence(), PreprocessConfig(frames=FRAMES))
    assert sorted(out.batched()) == ["body", "hand", "hand_mask"]
    assert out.batched()["hand_mask"].shape == (1, FRAMES)


def test_body_must_have_four_channels():
    arrays = world_sequence()
    with pytest.raises(ValueError, match=r"expected body \(T, V, 4\)"):
        run({**arrays, "body": arrays["body"][..., :3]}, PreprocessConfig(frames=FRAMES))
    with pytest.raises(ValueError, match=r"expected body"):
        run({**arrays, "body": arrays["body"][None, None]}, PreprocessConfig(frames=FRAMES))


def shoulders_and_hips(frames: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """An NTU body whose shoulders are 0.4 apart around (0, 1, 2) and whose hips are 0.5 below."""
    body = np.zeros((frames, NTU25.num_joints, 4), np.float32)
    for name, x, y in [
        ("left_shoulder", 0.2, 1.0),
        ("right_shoulder", -0.2, 1.0),
        ("left_hip", 0.1, 0.5),
        ("right_hip", -0.1, 0.5),
    ]:
        body[:, NTU25.index(name)] = (x, y, 2.0, 1.0)
    return body, np.any(body != 0, axis=-1)


@pytest.mark.parametrize(("scale", "size"), [("shoulder", 0.4), ("torso", 0.5), ("none", 1.0)])
def test_body_size_per_scale(scale, size):
    body, valid = shoulders_and_hips()
    centre, found = body_centre_and_size(body, valid, "ntu25", scale)
    assert found == pytest.approx(size, rel=1e-6)
    np.testing.assert_allclose(centre, [0.0, 1.0, 2.0], atol=1e-7)
    assert centre.dtype == np.float32
    assert isinstance(found, float)


def test_body_size_defaults_to_shoulder_width():
    body, valid = shoulders_and_hips()
    assert body_centre_and_size(body, valid, "ntu25")[1] == pytest.approx(0.4, rel=1e-6)


@pytest.mark.filterwarnings("error")  # no mean of an empty selection
def test_torso_counts_only_frames_with_shoulders_and_both_hips():
    body, valid = shoulders_and_hips(frames=4)
    body[1, NTU25.index("left_hip")] = (5.0, 9.0, 9.0, 1.0)
    valid[1, NTU25.index("left_hip")] = False  # marked unobserved: must not count
    body[2, NTU25.index("right_hip"), 1] = 9.0  # a lone hip, marked unobserved
    valid[2, NTU25.index("right_hip")] = False
    assert body_centre_and_size(body, valid, "ntu25", "torso")[1] == pytest.approx(0.5, rel=1e-6)
    valid[:, NTU25.index("left_hip")] = False  # no frame with both hips
    assert body_centre_and_size(body, valid, "ntu25", "torso")[1] == 1.0


def test_torso_scale_sets_the_unit_through_preprocessing():
    body, _ = shoulders_and_hips(FRAMES)
    hands, present = np.zeros((FRAMES, 2, 21, 4), np.float32), np.zeros((FRAMES, 2), bool)
    out = preprocess_arrays(
        body, hands, present, "ntu25", "world", PreprocessConfig(frames=FRAMES, scale="torso")
    )
    assert out.body[1, 0, NTU25.index("left_hip"), 0] == pytest.approx(-1.0, rel=1e-5)


def test_without_shoulders_the_centre_is_the_mean_observed_joint_and_the_size_one():
    body, valid = shoulders_and_hips()
    valid[:, NTU25.index("left_shoulder")] = False
    centre, size = body_centre_and_size(body, valid, "ntu25")
    np.testing.assert_allclose(centre, [(-0.2 + 0.1 - 0.1) / 3, (1.0 + 0.5 + 0.5) / 3, 2.0], atol=1e-6)
    assert centre.shape == (3,)
    assert centre.dtype == np.float32
    assert size == 1.0


def test_nothing_observed_gives_origin_and_unit():
    body = np.zeros((4, NTU25.num_joints, 4), np.float32)
    centre, size = body_centre_and_size(body, np.zeros((4, NTU25.num_joints), bool), "ntu25")
    np.testing.assert_array_equal(centre, np.zeros(3))
    assert centre.shape == (3,)
    assert centre.dtype == np.float32
    assert size == 1.0


def test_coinciding_shoulders_take_the_floor_and_a_single_point_the_unit():
    body, valid = shoulders_and_hips()
    body[:, NTU25.index("left_shoulder"), :3] = body[:, NTU25.index("right_shoulder"), :3]
    assert body_centre_and_size(body, valid, "ntu25")[1] == pytest.approx(LEAST_SIZE_SHARE * 0.5, rel=1e-4)
    body[..., :3] = body[:, NTU25.index("right_shoulder"), None, :3]  # every joint on one point
    assert body_centre_and_size(body, valid, "ntu25")[1] == 1.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"channels": 2}, r"channels must be 3 \(x, y, z\) or 4 \(with score\)"),
        ({"frames": 0}, "frames must be a whole number from 1 to 10000"),
        ({"frames": 10_001}, "frames must be a whole number from 1 to 10000"),
        ({"frames": 32.0}, "frames must be a whole number"),
        ({"frames": True}, "frames must be a whole number"),
        ({"num_persons": 0}, "num_persons must be a whole number from 1 to 16"),
        ({"num_persons": 17}, "num_persons must be a whole number from 1 to 16"),
        ({"channels": 3.0}, "channels must be 3"),
        ({"normalise": "false"}, "normalise must be true or false"),
        ({"aspect_correction": 1}, "aspect_correction must be true or false"),
        ({"body_layout": ["ntu25"]}, "body_layout must be one of"),
        ({"window_seconds": True}, "window_seconds must be 0"),
        ({"window_seconds": float("nan")}, "window_seconds must be 0"),
        (
            {"window_seconds": 60.5},
            r"window_seconds must be 0 \(frame-count windows\) or a duration from 0.05 to 60 s",
        ),
        ({"window_seconds": -1.0}, "window_seconds must be 0"),
        ({"window_seconds": 5e-324}, "window_seconds must be 0"),
        ({"window_seconds": "2"}, "window_seconds must be 0"),
        ({"min_score": True}, r"min_score must be a number from 0 \(keep every joint\) to 1"),
        ({"min_score": float("nan")}, "min_score must be a number"),
        ({"min_score": -0.1}, "min_score must be a number"),
        ({"min_score": 1.5}, "min_score must be a number"),
        ({"min_score": "0.5"}, "min_score must be a number"),
        ({"space": "metres"}, r"space must be one of \('image', 'world'\) \(or empty: not recorded\)"),
        ({"space": None}, "space must be one of"),
    ],
)
def test_config_bounds(options, message):
    with pytest.raises(ValueError, match=message):
        PreprocessConfig(**options)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"version": float("inf")}, "version inf is not a whole number"),
        ({"version": "2"}, "version '2' is not a whole number"),
        ({"version": 10**400}, "newer than this code"),
        (["frames", 32], "must be a mapping, not list"),
    ],
)
def test_stored_configs_with_impossible_versions_or_types_are_refused(data, message):
    with pytest.raises(ValueError, match=message):
        PreprocessConfig.from_dict(data)


def test_config_edges_that_are_allowed():
    assert PreprocessConfig(frames=1, num_persons=1, window_seconds=60.0).window_seconds == 60.0
    assert PreprocessConfig(frames=1, num_persons=1).frames == 1


def test_joints_scored_below_min_score_are_absent_and_set_neither_centre_nor_unit():
    """The legs MediaPipe places in an upper-body view, and a shoulder it guessed in some frames:
    with ``min_score`` they are not observed, exactly as if they had been all zeros."""
    arrays = world_sequence()
    left = NTU25.index("left_shoulder")
    legs = [NTU25.index(n) for n in ("left_knee", "right_knee", "left_ankle", "right_ankle")]
    guessed = arrays["body"].copy()
    guessed[:, legs, 3] = 0.2
    guessed[3::4, left, 3] = 0.49
    guessed[3::4, left, :3] += 5.0  # a wild guess: it must not move the centre
    zeroed = arrays["body"].copy()
    zeroed[:, legs] = 0.0
    zeroed[3::4, left] = 0.0
    config = PreprocessConfig(frames=FRAMES, min_score=0.5)
    out = run({**arrays, "body": guessed}, config)
    np.testing.assert_array_equal(out.body, run({**arrays, "body": zeroed}, config).body)
    np.testing.assert_array_equal(
        out.body, run({**arrays, "body": zeroed}, PreprocessConfig(frames=FRAMES)).body
    )
    assert not out.body[:, :, legs].any()
    assert run({**arrays, "body": guessed}, PreprocessConfig(frames=FRAMES)).body[:, :, legs].any()


def test_a_stored_config_of_version_2_keeps_every_joint():
    data = PreprocessConfig(frames=8).to_dict()
    del data["min_score"]
    data["version"] = 2
    assert PreprocessConfig.from_dict(data).min_score == 0.0


def test_a_stored_config_of_version_3_has_no_space_and_takes_either():
    data = PreprocessConfig(frames=8, space="image").to_dict()
    del data["space"]
    data["version"] = 3
    assert PreprocessConfig.from_dict(data).space == ""


@pytest.mark.parametrize(("version", "key"), [(4, "hand_frame"), (4, "window_seconds"), (2, "frames")])
def test_a_stored_config_lacking_a_key_its_version_has_is_refused(version, key):
    """A version 4 model without hand_frame and window_seconds loaded as a body-frame, frame-count
    model: another input, scored with confidence 1, and no error."""
    data = {**PreprocessConfig(frames=8).to_dict(), "version": version}
    for later in ("min_score", "space") if version == 2 else ():
        del data[later]
    del data[key]
    with pytest.raises(ValueError, match=f"version {version} lacks \\['{key}'\\]"):
        PreprocessConfig.from_dict(data)


def test_config_without_a_version_is_read_as_the_current_one():
    data = PreprocessConfig(frames=8).to_dict()
    del data["version"]
    assert PreprocessConfig.from_dict(data) == PreprocessConfig(frames=8)


def test_shoulders_collapsed_onto_a_point_cannot_blow_up_the_inputs():
    """A bad detection put both shoulders on one point: divided by a width of 1e-4, the body became
    coordinates of 1e4 that the model answered with confidence 1. The size keeps a floor relative to
    the body's extent (real people stand far above it)."""
    body, valid = shoulders_and_hips()
    body[:, NTU25.index("right_shoulder"), 0] = 0.2 - 1e-4
    _, size = body_centre_and_size(body, valid, "ntu25")
    assert size == pytest.approx(LEAST_SIZE_SHARE * 0.5, rel=1e-4)  # the hips lie 0.5 below
    body[:, NTU25.index("right_shoulder"), 0] = -0.2  # a normal width is left as it is
    assert body_centre_and_size(body, valid, "ntu25")[1] == pytest.approx(0.4, rel=1e-6)


def test_hands_of_a_collapsed_body_stay_bounded_too():
    """Only the shoulders seen, 2e-6 apart: the floor was the body's extent alone (zero here), so a
    normal hand divided by it became values of 1e5. The present hands count in the extent."""
    frames = 4
    body = np.zeros((frames, MP33.num_joints, 4), np.float32)
    body[:, MP33.index("left_shoulder")] = (0.5 + 1e-6, 0.5, 0.0, 1.0)
    body[:, MP33.index("right_shoulder")] = (0.5 - 1e-6, 0.5, 0.0, 1.0)
    hands = np.zeros((frames, 2, 21, 4), np.float32)
    spread = np.linspace(0.2, 0.3, 21, dtype=np.float32)
    hands[:, 0, :, 0], hands[:, 0, :, 1], hands[:, 0, :, 3] = spread, spread, 1.0
    present = np.zeros((frames, 2), bool)
    present[:, 0] = True
    for hand_frame in ("body", "wrist"):
        config = PreprocessConfig(body_layout="mediapipe33", frames=frames, hand_frame=hand_frame)
        inputs = preprocess_arrays(body, hands, present, "mediapipe33", "image", config)
        assert np.abs(inputs.hand).max() < 100, hand_frame  # 1 / LEAST_SIZE_SHARE at most, not 1e5
        assert np.abs(inputs.body).max() < 100


def test_depth_counts_in_the_extent_that_floors_the_body_size():
    """Shoulders on one point, the joints on one pixel but spread in z (legal up to 10 in image
    space): over x and y alone the floor was 2e-6, and z came out as 4e6."""
    frames = 3
    body = np.zeros((frames, MP33.num_joints, 4), np.float32)
    body[..., :2], body[..., 3] = 0.5, 1.0
    body[:, :, 2] = np.linspace(-9.0, 9.0, MP33.num_joints)
    body[:, 11, 0] += 1e-7  # the shoulders, 1e-7 apart
    out = preprocess_arrays(
        body, np.zeros((frames, 2, 21, 4)), np.zeros((frames, 2), bool), "mediapipe33", "image",
        PreprocessConfig(body_layout="mediapipe33", frames=frames),
    )  # fmt: skip
    assert np.abs(out.body).max() <= 1.0 / LEAST_SIZE_SHARE + 1e-3


def test_the_subjects_hands_go_to_the_subject_alone_when_mapped_to_ntu25():
    """Each person's NTU hand joints came from the subject's hands: a padded, empty second slot
    got six phantom joints, breaking "a missing person is exactly zero after every step"."""
    rng = np.random.default_rng(0)
    body = rng.uniform(0.3, 0.7, (2, FRAMES, MP33.num_joints, 4)).astype(np.float32)
    body[1] = 0.0  # no second person
    hands = rng.uniform(0.3, 0.7, (FRAMES, 2, 21, 4)).astype(np.float32)
    present = np.ones((FRAMES, 2), bool)
    config = PreprocessConfig(body_layout="ntu25", frames=FRAMES, num_persons=2, normalise=False)
    inputs = preprocess_arrays(body, hands, present, "mediapipe33", "image", config)
    assert not inputs.body[..., 1].any()  # (C, T, V, M): the empty slot stays empty
    assert inputs.body[..., 0].any()
