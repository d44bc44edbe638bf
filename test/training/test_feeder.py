"""Training feeder: shapes, mirroring, synchronous crops, hand dropout and determinism."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from bharnet_ros.core.layouts import MP33, mirror_permutation
from bharnet_ros.core.preprocess import PreprocessConfig
from bharnet_ros.core.skeleton import SkeletonSequence
from bharnet_ros.training import synth
from bharnet_ros.training.dataset import DatasetError, Sample, SkeletonDataset
from bharnet_ros.training.feeder import (
    NO_AUGMENT,
    AugmentConfig,
    SkeletonFeeder,
    drop_hand_frames,
    mirror_arrays,
    mirror_label_map,
    random_shear,
)

T = 16


def synth_dataset(count: int = 4) -> SkeletonDataset:
    """A few synthetic gestures (mediapipe33, image space)."""
    names = ["wave", "thumbs_up", "clap", "pointing"]
    samples = [synth.generate_sample(names[i % 4], np.random.default_rng(i)) for i in range(count)]
    return SkeletonDataset.from_sequences(
        [s.sequence for s in samples], [s.label for s in samples], synth.CLASS_NAMES
    )


def only(**values: float) -> AugmentConfig:
    """An augmentation config with everything off except ``values``."""
    fields = {**NO_AUGMENT.to_dict(), **values}
    return AugmentConfig(**fields)


@pytest.fixture(scope="module")
def data() -> SkeletonDataset:
    return synth_dataset()


def test_item_shapes_and_types(data):
    config = PreprocessConfig(body_layout="ntu25", frames=T, num_persons=1)
    body, hand, mask, label = SkeletonFeeder(data, config, train=True)[0]
    assert body.shape == (3, T, 25, 1)
    assert hand.shape == (3, T, 25, 2)
    assert mask.shape == (T,)
    assert body.dtype == torch.float32
    assert label.dtype == torch.int64
    assert int(label) == data.labels[0]
    assert torch.all(hand[:, :, 21:] == 0)  # dummy vertices stay zero after augmentation


def test_mirror_arrays_flips_observed_x_and_swaps_slots():
    body = np.zeros((1, 2, 33, 4), np.float32)
    body[0, :, MP33.index("left_wrist")] = (0.7, 0.5, 0.1, 1.0)
    hands = np.zeros((2, 2, 21, 4), np.float32)
    hands[:, 0] = (0.75, 0.4, 0.0, 1.0)
    present = np.array([[True, False], [True, False]])
    b, h, p = mirror_arrays(body, hands, present, "mediapipe33", "image")
    right = MP33.index("right_wrist")
    assert np.allclose(b[0, :, right], (0.3, 0.5, 0.1, 1.0))
    assert not b[0, :, MP33.index("left_wrist")].any()  # absent joints stay zero, not 1 - 0
    assert not b[0, :, MP33.index("nose")].any()
    assert np.allclose(h[:, 1], (0.25, 0.4, 0.0, 1.0))
    assert not h[:, 0].any()
    assert p.tolist() == [[False, True], [False, True]]
    world, _, _ = mirror_arrays(body, hands, present, "mediapipe33", "world")
    assert np.isclose(world[0, 0, right, 0], -0.7)


@pytest.mark.parametrize("layout", ["mediapipe33", "ntu25"])
def test_mirrored_item_swaps_hands_and_sides_and_negates_x(data, layout):
    """Same crop; mirroring negates normalised x, swaps the hand slots and the body sides."""
    config = PreprocessConfig(body_layout=layout, frames=T, num_persons=1)
    plain = SkeletonFeeder(data, config, train=True, augment=NO_AUGMENT, seed=3)
    mirrored = SkeletonFeeder(data, config, train=True, augment=only(mirror=1.0), seed=3)
    body, hand, mask, _ = (x.numpy() for x in plain[1])
    m_body, m_hand, m_mask, _ = (x.numpy() for x in mirrored[1])
    flip = np.array([-1.0, 1.0, 1.0])[:, None, None, None]
    perm = mirror_permutation(layout)
    assert np.allclose(m_body, flip * body[:, :, perm], atol=1e-5)
    assert np.allclose(m_hand, flip * hand[..., ::-1], atol=1e-5)
    assert np.array_equal(m_mask, mask)
    assert np.abs(body).sum() > 0
    assert np.abs(hand).sum() > 0


def ramp_dataset(frames: int = 60) -> SkeletonDataset:
    """One sequence whose body and hand x both encode the frame index."""
    t = np.arange(frames, dtype=np.float32)
    body = np.zeros((frames, 33, 4), np.float32)
    body[..., 0] = 0.3 + 0.004 * t[:, None]
    body[..., 1] = np.linspace(0.2, 0.8, 33)[None]
    body[..., 3] = 1.0
    hands = np.zeros((frames, 2, 21, 4), np.float32)
    hands[..., 0] = 0.5 + 0.004 * t[:, None, None]
    hands[..., 1] = 0.4
    hands[..., 3] = 1.0
    present = np.ones((frames, 2), bool)
    sequence = SkeletonSequence(t / 30.0, body, hands, present, layout="mediapipe33", space="image")
    return SkeletonDataset.from_sequences([sequence], [0], ["ramp"])


@pytest.mark.parametrize("window_seconds", [0.0, 1.0])
def test_empty_frames_before_the_person_appears_are_no_part_of_the_clip(window_seconds):
    """5 HRI clips start with frames in which MediaPipe found nobody: their early windows showed a
    body vanishing, which the live node (no frame while nobody is seen) never shows."""
    plain = ramp_dataset(60)
    sample = plain.sample(0)
    lead = 20
    late = Sample(
        "late", 0,
        np.concatenate([np.zeros((1, lead, 33, 4), np.float32), sample.body], axis=1),
        np.concatenate([np.zeros((1, lead, 2, 21, 4), np.float32), sample.hands], axis=1),
        np.concatenate([np.zeros((1, lead, 2), bool), sample.hand_present], axis=1),
        np.concatenate([np.arange(lead) / 30.0, sample.timestamps + lead / 30.0]),
    )  # fmt: skip
    late_data = SkeletonDataset.from_samples([late], ["ramp"], "mediapipe33", "image")
    config = PreprocessConfig(
        body_layout="mediapipe33", frames=T, num_persons=1, normalise=False, window_seconds=window_seconds
    )
    for view in (0.0, 0.5, 1.0):
        feeders = [SkeletonFeeder(d, config) for d in (plain, late_data)]
        for feeder in feeders:
            feeder.view = view
        assert torch.equal(feeders[0][0][0], feeders[1][0][0])
        assert torch.equal(feeders[0][0][2], feeders[1][0][2])


@pytest.mark.parametrize("window_seconds", [0.0, 1.0])
def test_a_moment_the_person_was_lost_is_no_part_of_the_clip_either(window_seconds):
    """`bharnet extract` keeps an empty frame where nobody was found; the live window never gets
    one, and blends the frames either side. Training showed the body vanishing instead."""
    sample = ramp_dataset(60).sample(0)
    lost = np.arange(20, 30)
    kept = np.setdiff1d(np.arange(60), lost)
    blanked = [np.array(part) for part in (sample.body, sample.hands, sample.hand_present)]
    for part in blanked:
        part[:, lost] = 0
    clips = [
        Sample(
            "gap",
            0,
            sample.body[:, kept],
            sample.hands[:, kept],
            sample.hand_present[:, kept],
            sample.timestamps[kept],
        ),
        Sample("blank", 0, *blanked, sample.timestamps),
    ]
    data = [SkeletonDataset.from_samples([clip], ["ramp"], "mediapipe33", "image") for clip in clips]
    config = PreprocessConfig(
        body_layout="mediapipe33", frames=T, num_persons=1, normalise=False, window_seconds=window_seconds
    )
    for view in (0.0, 0.5, 1.0):
        feeders = [SkeletonFeeder(d, config) for d in data]
        for feeder in feeders:
            feeder.view = view
        assert all(torch.equal(a, b) for a, b in zip(feeders[0][0], feeders[1][0], strict=True))


def test_a_frame_stamped_like_the_one_before_is_read_as_the_live_window_reads_it():
    """The buffer ignores it and keeps the first; resampling read the last (0.05 apart here)."""
    sample = ramp_dataset(60).sample(0)
    stamps = np.array(sample.timestamps)
    stamps[31] = stamps[30]  # frame 31 repeats frame 30's stamp with its own pose
    repeated = Sample("repeat", 0, sample.body, sample.hands, sample.hand_present, stamps)
    kept = np.setdiff1d(np.arange(60), [31])
    first = Sample(
        "first", 0, sample.body[:, kept], sample.hands[:, kept], sample.hand_present[:, kept], stamps[kept]
    )
    data = [
        SkeletonDataset.from_samples([clip], ["ramp"], "mediapipe33", "image") for clip in (repeated, first)
    ]
    config = PreprocessConfig(
        body_layout="mediapipe33", frames=T, num_persons=1, normalise=False, window_seconds=1.0
    )
    feeders = [SkeletonFeeder(d, config) for d in data]
    assert all(torch.equal(a, b) for a, b in zip(feeders[0][0], feeders[1][0], strict=True))


def test_crop_is_identical_for_body_and_hands():
    raw = PreprocessConfig(body_layout="mediapipe33", frames=T, num_persons=1, normalise=False)
    feeder = SkeletonFeeder(ramp_dataset(), raw, train=True, augment=NO_AUGMENT, seed=0)
    starts = set()
    for epoch in range(4):
        feeder.set_epoch(epoch)
        body, hand, mask, _ = feeder[0]
        body_x, hand_x = body[0, :, 0, 0].numpy(), hand[0, :, 0, 1].numpy()
        assert np.allclose(hand_x - body_x, 0.2, atol=1e-5)
        assert torch.all(mask == 1)
        starts.add(round(float(body_x[0]), 4))
    assert len(starts) > 1  # the random crop really moves
    centre = SkeletonFeeder(ramp_dataset(), raw, train=False)
    body, hand, _, _ = centre[0]
    assert np.allclose(hand[0, :, 0, 1] - body[0, :, 0, 0], 0.2, atol=1e-5)


def test_hand_dropout_zeroes_whole_hand_frames_and_clears_the_mask():
    config = PreprocessConfig(body_layout="mediapipe33", frames=T, num_persons=1)
    feeder = SkeletonFeeder(ramp_dataset(), config, train=True, augment=only(hand_dropout=1.0), seed=1)
    _, hand, mask, _ = feeder[0]
    observed = hand.abs().sum(dim=(0, 2)) > 0  # (T, 2) per slot
    assert not observed.all()
    assert torch.equal(mask.bool(), observed.any(dim=1))


def test_items_are_deterministic_per_seed_epoch_and_index(data):
    config = PreprocessConfig(body_layout="ntu25", frames=T, num_persons=1)
    first = SkeletonFeeder(data, config, train=True, seed=7)
    again = SkeletonFeeder(data, config, train=True, seed=7)
    for a, b in zip(first[2], again[2], strict=True):
        assert torch.equal(a, b)
    again.set_epoch(1)
    assert not torch.equal(first[2][1], again[2][1])
    eval_feeder = SkeletonFeeder(data, config, train=False, seed=7)
    eval_feeder.set_epoch(5)
    assert torch.equal(eval_feeder[0][0], SkeletonFeeder(data, config)[0][0])
    repeat = first[2 + len(data)]  # the sample's second draw in an epoch (training.sampling)
    assert int(repeat[3]) == int(first[2][3])
    assert not torch.equal(repeat[1], first[2][1])  # augmented afresh, not the same input again


def test_items_do_not_depend_on_the_number_of_workers(data):
    config = PreprocessConfig(body_layout="ntu25", frames=T, num_persons=1)
    feeder = SkeletonFeeder(data, config, train=True, seed=2)
    feeder.set_epoch(3)
    single = next(iter(DataLoader(feeder, batch_size=4, num_workers=0)))
    multi = next(iter(DataLoader(feeder, batch_size=4, num_workers=2)))
    for a, b in zip(single, multi, strict=True):
        assert torch.equal(a, b)


def test_bad_augment_config_is_an_error():
    with pytest.raises(ValueError, match="unknown keys"):
        AugmentConfig.from_dict({"mirorr": 0.5})
    with pytest.raises(ValueError, match="probability"):
        AugmentConfig(mirror=1.5)
    for shear in (-0.1, 1.0):
        with pytest.raises(ValueError, match=r"augment.shear must be in \[0, 1\)"):
            AugmentConfig(shear=shear)


@pytest.mark.parametrize(("space", "axes"), [("image", 2), ("world", 3)])
def test_a_shear_has_unit_diagonal_and_keeps_image_depth_apart(space, axes):
    matrix = random_shear(space, 0.3, np.random.default_rng(0))
    off = ~np.eye(3, dtype=bool)
    assert np.array_equal(np.diag(matrix), np.ones(3))
    assert np.all(np.abs(matrix[off]) <= 0.3)
    assert np.count_nonzero(matrix[off]) == axes * (axes - 1)  # image: z neither moves nor moves x, y


def test_a_sheared_item_is_a_linear_map_of_the_plain_one(data):
    """Image data: x and y mix with unit diagonal, z and the hand mask stay as they were."""
    config = PreprocessConfig(body_layout="ntu25", frames=T, num_persons=1)
    plain = SkeletonFeeder(data, config, train=True, augment=NO_AUGMENT)[1]
    sheared = SkeletonFeeder(data, config, train=True, augment=only(shear=0.3))[1]
    points = plain[0][:2].reshape(2, -1).numpy().T
    moved = sheared[0][:2].reshape(2, -1).numpy().T
    matrix = np.linalg.lstsq(points, moved, rcond=None)[0].T
    assert np.allclose(points @ matrix.T, moved, atol=1e-5)
    assert np.allclose(np.diag(matrix), 1.0, atol=1e-5)
    assert np.all((np.abs(matrix[[0, 1], [1, 0]]) > 0) & (np.abs(matrix[[0, 1], [1, 0]]) <= 0.3))
    assert torch.allclose(plain[0][2], sheared[0][2])
    assert torch.equal(plain[2], sheared[2])


def motion_dataset(fps_list: list[float], seconds: float = 3.0) -> SkeletonDataset:
    """The same smooth arm motion recorded at several frame rates (one sample per rate)."""
    sequences = []
    for fps in fps_list:
        t = np.arange(int(round(seconds * fps)) + 1) / fps
        body = np.zeros((len(t), 33, 4), np.float32)
        body[..., 0] = np.linspace(0.4, 0.6, 33)[None]
        body[..., 1] = np.linspace(0.2, 0.8, 33)[None]
        body[:, [11, 12], 0] = [0.55, 0.45]  # shoulders: the body size is 0.1 image widths
        body[:, 15, 0] += 0.1 * np.sin(2 * np.pi * 0.7 * t)  # the left wrist swings
        body[:, 15, 1] -= 0.05 * t
        body[..., 3] = 1.0
        hands = np.zeros((len(t), 2, 21, 4), np.float32)
        hands[:, 0, :, 0] = body[:, 15, None, 0] + np.linspace(0, 0.03, 21)[None]
        hands[:, 0, :, 1] = body[:, 15, None, 1]
        hands[:, 0, :, 3] = 1.0
        present = np.zeros((len(t), 2), bool)
        present[:, 0] = True
        sequences.append(SkeletonSequence(t, body, hands, present, image_size=(640, 480)))
    return SkeletonDataset.from_sequences(sequences, [0] * len(sequences), ["swing"])


def test_time_windows_give_the_same_input_at_any_frame_rate():
    """Evaluation windows of the same motion at 10, 15, 20 and 30 fps agree within tolerance."""
    config = PreprocessConfig(body_layout="ntu25", frames=24, num_persons=1, window_seconds=2.0)
    feeder = SkeletonFeeder(motion_dataset([10.0, 15.0, 20.0, 30.0]), config, train=False)
    items = [feeder[i] for i in range(4)]
    for body, hand, mask, _ in items[:3]:
        assert torch.allclose(body, items[3][0], atol=0.06)  # body sizes: a few % of a shoulder width
        assert torch.allclose(hand, items[3][1], atol=0.06)
        assert torch.equal(mask, items[3][2])
    frame_count = SkeletonFeeder(motion_dataset([10.0, 30.0]), PreprocessConfig("ntu25", 24, 1), train=False)
    assert not torch.allclose(frame_count[0][0], frame_count[1][0], atol=0.06)  # frame counts do differ


def test_training_time_windows_overlap_the_clip_and_vary():
    config = PreprocessConfig(
        body_layout="mediapipe33", frames=T, num_persons=1, normalise=False, window_seconds=1.0
    )
    augment = only(speed=0.2, min_cover=0.8)
    feeder = SkeletonFeeder(ramp_dataset(90), config, train=True, augment=augment, seed=0)
    ends = set()
    for epoch in range(6):
        feeder.set_epoch(epoch)
        body = feeder[0][0][0, :, 0, 0].numpy()
        frames = (body - 0.3) / 0.004  # the ramp encodes the frame index
        assert frames.min() >= -1e-3
        assert frames.max() <= 89 + 1e-3
        assert frames.max() - frames.min() >= 0.6 * 30 * 0.8 - 1  # most of the window is inside the clip
        ends.add(round(float(frames[-1]), 2))
    assert len(ends) > 3


def test_mirror_label_map_pairs_lateral_classes_and_never_mirrors_a_lone_one():
    names = ["left", "right", "point_left", "point_right", "wave", "swipe_left"]
    assert mirror_label_map(names).tolist() == [1, 0, 3, 2, 4, -1]
    # explicit pairs: the lateral classes they leave out are never mirrored (a mirrored point_left
    # was trained as point_left); [] mirrors no lateral class at all
    assert mirror_label_map(names, [["wave", "swipe_left"]]).tolist() == [-1, -1, -1, -1, 5, 4]
    assert mirror_label_map(names, [["point_left", "point_right"]]).tolist() == [-1, -1, 3, 2, 4, -1]
    assert mirror_label_map(names, []).tolist() == [-1, -1, -1, -1, 4, -1]
    assert mirror_label_map(names, never=("wave",)).tolist()[4] == -1
    with pytest.raises(ValueError, match="not among the classes"):
        mirror_label_map(names, [["wave", "jump"]])
    with pytest.raises(ValueError, match="pairs 'left' or 'wave' twice"):
        mirror_label_map(names, [["left", "right"], ["left", "wave"]])


def test_lateral_names_pair_whatever_their_case_and_separators():
    assert mirror_label_map(["Turn_Left", "Turn_Right"]).tolist() == [1, 0]
    assert mirror_label_map(["turn left", "turn right", "wave"]).tolist() == [1, 0, 2]
    assert mirror_label_map(["swipe-left", "swipe_right"]).tolist() == [1, 0]
    # no separator at all: half of them were mirrored into the other gesture under their own label
    assert mirror_label_map(["TurnLeft", "TurnRight", "Wave"]).tolist() == [1, 0, 2]
    assert mirror_label_map(["turn.left", "turn.right", "point(left)"]).tolist() == [1, 0, -1]


@pytest.mark.parametrize(
    "names",
    [
        ["TURNLEFT", "TURNRIGHT"],
        ["turnleft", "turnright"],
        ["swipe_left2", "swipe_right2"],
        ["lefthand_raise", "righthand_raise"],
    ],
)
def test_left_and_right_inside_a_word_pair_too(names):
    """Not a word of its own, the pair was mirrored under its own labels (trained to confuse them)
    and test-time mirroring averaged each with its own mirror image, a tie."""
    assert mirror_label_map([*names, "wave"]).tolist() == [1, 0, 2]
    assert mirror_label_map([names[0], "wave"]).tolist() == [-1, 1]  # no twin: never mirrored
    assert mirror_label_map([*names, "wave"], []).tolist() == [-1, -1, 2]


def test_names_told_apart_by_a_symbol_are_two_gestures():
    """volume+ and volume- were one gesture by their words once every symbol parted words."""
    from bharnet_ros.training.classes import same_words

    assert same_words(["volume+", "volume-", "zoom+", "+1", "-1"]) is None
    assert same_words(["Turn_Left", "turnLeft"]) == ("Turn_Left", "turnLeft")


def test_a_class_never_mirrored_is_never_made_by_mirroring_its_twin():
    """mirror_never: [left] still mirrored right samples into left ones, which the user had ruled out."""
    names = ["left", "right", "wave"]
    assert mirror_label_map(names, never=("left",)).tolist() == [-1, -1, 2]
    assert mirror_label_map(names, [["left", "right"]], ("right",)).tolist() == [-1, -1, 2]


def test_hand_dropout_runs_shorter_than_a_tenth_of_the_window():
    hands, present = np.ones((100, 2, 21, 4), np.float32), np.ones((100, 2), bool)
    rng = np.random.default_rng(0)
    _, kept = drop_hand_frames(hands, present, 1.0, 0.05, rng)  # crashed: uniform(0.1, 0.05)
    assert 95 <= kept.sum(axis=0).min() < 100


def test_a_mirrored_lateral_sample_changes_class_and_a_lone_one_is_not_mirrored():
    data = ramp_dataset()
    both = SkeletonDataset.from_sequences(
        [data.sequence(0)] * 3, [0, 1, 2], ["left", "right", "swipe_left"], names=["a", "b", "c"]
    )
    config = PreprocessConfig(body_layout="mediapipe33", frames=T, num_persons=1)
    feeder = SkeletonFeeder(both, config, train=True, augment=only(mirror=1.0), seed=0)
    plain = SkeletonFeeder(both, config, train=True, augment=NO_AUGMENT, seed=0)
    assert [int(feeder[i][3]) for i in range(3)] == [1, 0, 2]
    assert not torch.equal(feeder[0][0], plain[0][0])  # mirrored
    assert torch.equal(feeder[2][0], plain[2][0])  # never mirrored under its own label


def damaged(change) -> SkeletonDataset:
    """``synth_dataset(3)`` with ``change`` applied to a copy of its second sample (sequence_000001)."""
    data = synth_dataset(3)
    samples = [
        dataclasses.replace(s, body=s.body.copy(), hands=s.hands.copy(), timestamps=s.timestamps.copy())
        for s in data
    ]
    samples[1] = change(samples[1])
    return SkeletonDataset.from_samples(samples, data.class_names, data.layout, data.space)


def set_values(field: str, index: tuple, value: float):
    def change(sample: Sample) -> Sample:
        getattr(sample, field)[index] = value
        return sample

    return change


def no_frames(sample: Sample) -> Sample:
    return dataclasses.replace(
        sample, body=sample.body[:, :0], hands=sample.hands[:, :0],
        hand_present=sample.hand_present[:, :0], timestamps=sample.timestamps[:0],
    )  # fmt: skip


XYZ = (Ellipsis, slice(0, 3))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (set_values("body", XYZ, 1e30), "body coordinates .*reach 1e\\+30, outside \\[-10, 10\\]"),
        (set_values("body", (0, 3, 0, 0), -np.finfo(np.float32).max), "body coordinates .*reach -3.4e\\+38"),
        (set_values("hands", XYZ, 3e38), "hand coordinates .*reach 3e\\+38"),
        (set_values("body", (Ellipsis, 3), 2.0), "body scores reach 2, outside \\[0, 1\\]"),
        (set_values("timestamps", (slice(None),), 1e300), "timestamps .*reach 1e\\+300"),
        (no_frames, "has no frames"),
    ],
)
def test_samples_the_model_cannot_take_are_named_before_any_item(change, message):
    """The format only asks for finite numbers: FLT_MAX overflows the preprocessing into NaN,
    1e300 s overflows the time windows and a sample without frames cannot be sampled."""
    with pytest.raises(DatasetError, match=f"sample sequence_000001.*{message}"):
        SkeletonFeeder(damaged(change), PreprocessConfig(body_layout="ntu25", frames=T), train=True)


def at_the_limits(sample: Sample) -> Sample:
    """Every joint and hand joint at +10 in even frames and -10 in odd ones (image space's limit)."""
    for array in (sample.body, sample.hands):
        array[:, ::2, ..., :3] = 10.0
        array[:, 1::2, ..., :3] = -10.0
    return sample


@pytest.mark.parametrize("window", [0.0, 2.0])
def test_the_most_extreme_values_allowed_give_finite_items(window):
    """Coordinates at the image-space limit and a clock at 1e10 s still give finite model inputs."""
    data = damaged(at_the_limits)
    data.timestamps += 1e10 - data.timestamps.max()
    config = PreprocessConfig(body_layout="ntu25", frames=T, window_seconds=window)
    for train in (True, False):
        feeder = SkeletonFeeder(data, config, train=train)
        for index in range(len(data)):
            assert all(torch.isfinite(tensor).all() for tensor in feeder[index][:3])


def test_a_causal_fill_leaves_a_gap_at_the_windows_end_open_as_the_live_node_does():
    """The feeder fills over the whole clip, so a gap at the window's end is filled from frames the
    node has not seen yet; with causal_fill only frames up to the window's end fill it."""
    sample = synth.generate_sample("wave", np.random.default_rng(0))
    sequence = sample.sequence
    config = PreprocessConfig(body_layout="ntu25", frames=T, window_seconds=1.0)
    probe = SkeletonFeeder(
        SkeletonDataset.from_sequences([sequence], [sample.label], synth.CLASS_NAMES), config
    )
    end = int(probe.sampling(len(sequence), sequence.timestamps, np.random.default_rng(0)).hi.max())
    sequence.hand_present[end - 2 : end + 3] = False  # a gap of 5 frames around the window's end
    sequence.hands[end - 2 : end + 3] = 0.0
    assert sequence.hand_present[end + 3].any()  # a hand after the gap: the whole clip can fill it
    data = SkeletonDataset.from_sequences([sequence], [sample.label], synth.CLASS_NAMES)
    whole = SkeletonFeeder(data, config)[0][2]
    causal = SkeletonFeeder(data, config, causal_fill=True)[0][2]
    assert whole[-1] == 1.0  # filled from the frames after the gap
    assert causal[-1] == 0.0  # the node would show it absent
    assert torch.equal(whole[: T // 2], causal[: T // 2])
