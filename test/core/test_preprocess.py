"""The shared preprocessing: normalisation invariants, absent data, layouts, config round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bharnet_ros.core.layouts import MP33, NTU25
from bharnet_ros.core.modalities import MODALITIES
from bharnet_ros.core.preprocess import PreprocessConfig, preprocess_arrays, preprocess_sequence
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
