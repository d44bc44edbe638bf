"""MediaPipe Holistic tutorial data: raw MP_Data folders, repacked signer files, hand sides."""

from __future__ import annotations

import numpy as np
import pytest

from bharnet_ros.core.layouts import MP33
from bharnet_ros.training.importers.mpdata import (
    import_mpdata,
    nearer_pose_wrist,
    read_signer_file,
    split_frames,
)

SIGNERS = ("25kamalesh", "AkashSharma095", "Atulkoirala", "Bhavyagokhroo")


def frame_vector(face_values: int, hand_values: int, left: bool, right: bool, seed: int) -> np.ndarray:
    """A flat tutorial frame; a hand block is zeros when that hand is absent."""
    rng = np.random.default_rng(seed)
    pose = rng.random(33 * 4)
    face = rng.random(468 * face_values)
    hands = [rng.random(21 * hand_values) * present for present in (left, right)]
    return np.concatenate([pose, face, *hands])


def test_raw_example_matches_the_repacked_signer_file(shared_data):
    raw, report = import_mpdata(shared_data / "mp_holistic_signs" / "raw_example_25kamalesh")
    assert raw.names.tolist() == ["hello/0"]
    assert raw.class_names == ["hello"]
    assert report.skipped == []
    assert (raw.layout, raw.space, raw.max_persons) == ("mediapipe33", "image", 1)
    assert raw.frame_counts.tolist() == [30]
    np.testing.assert_allclose(raw.timestamps, np.arange(30) / 30.0)
    with np.load(shared_data / "mp_holistic_signs" / "signer_25kamalesh.npz", allow_pickle=False) as packed:
        assert packed["seq_id"][0] == 0
        np.testing.assert_array_equal(raw.body[0], packed["pose"][0])
    assert not raw.hand_present.any()  # in this clip both hands stay below the frame


def test_raw_folder_with_a_fixed_class_order_reports_empty_classes(shared_data):
    raw, report = import_mpdata(
        shared_data / "mp_holistic_signs" / "raw_example_25kamalesh" / "MP_Data",
        classes=["thanks", "hello", "iloveyou"],
    )
    assert raw.class_names == ["thanks", "hello", "iloveyou"]
    assert raw.labels.tolist() == [1]
    assert sorted(item for item, _, _ in report.skipped) == ["iloveyou", "thanks"]


def test_signer_file_keeps_hands_labels_and_names(shared_file):
    path = shared_file("mp_holistic_signs/signer_Atulkoirala.npz")
    dataset = read_signer_file(path, subject=3)
    with np.load(path, allow_pickle=False) as packed:
        left, right, labels = packed["left_hand"], packed["right_hand"], packed["label"]
    assert len(dataset) == 90
    assert dataset.class_names == ["hello", "thanks", "iloveyou", "blank"]
    assert dataset.class_counts().tolist() == [30, 30, 30, 0]
    np.testing.assert_array_equal(dataset.labels, labels)
    assert dataset.names[0] == "Atulkoirala/hello/0"
    assert set(dataset.subjects.tolist()) == {3}
    hands = dataset.hands[0].reshape(90, 30, 2, 21, 4)
    np.testing.assert_array_equal(hands[:, :, 0, :, :3], left)
    np.testing.assert_array_equal(hands[:, :, 1, :, :3], right)
    present = dataset.hand_present[0].reshape(90, 30, 2)
    np.testing.assert_array_equal(present[..., 0], np.abs(left).sum(axis=(2, 3)) > 0)
    np.testing.assert_array_equal(hands[..., 3], np.broadcast_to(present[..., None], hands.shape[:-1]))


@pytest.mark.parametrize("signer", SIGNERS)
def test_left_hand_block_is_the_hand_at_pose_left_wrist(shared_file, signer):
    """The finding behind slot 0 = left_hand block (docs/datasets.md): blocks follow pose wrists."""
    with np.load(shared_file(f"mp_holistic_signs/signer_{signer}.npz"), allow_pickle=False) as packed:
        pose = packed["pose"].reshape(-1, 33, 4)
        left = nearer_pose_wrist(pose, packed["left_hand"].reshape(-1, 21, 3))
        right = nearer_pose_wrist(pose, packed["right_hand"].reshape(-1, 21, 3))
    assert len(left) > 800  # measured 857..1572 frames with the block present
    assert len(right) > 1300  # measured 1405..2631
    assert (left == 0).mean() >= 0.99  # measured 99.9..100 % nearer pose 15 (left_wrist)
    assert (right == 1).mean() >= 0.99  # measured 99.6..100 % nearer pose 16 (right_wrist)


def test_folder_of_signers_gets_subject_ids(shared_data):
    dataset, report = import_mpdata(shared_data / "mp_holistic_signs")
    assert len(dataset) == 360
    assert [int(dataset.subjects[i]) for i in (0, 90, 180, 270)] == [1, 2, 3, 4]
    assert dataset.names[90].startswith("AkashSharma095/")
    assert "mpdata: subject 2 = AkashSharma095" in dataset.notes
    assert any("30 fps" in note for note in report.notes)


@pytest.mark.parametrize(("face", "hand", "size"), [(3, 3, 1662), (4, 4, 2172), (0, 3, 258)])
def test_frame_vector_variants_split_into_pose_and_hands(face, hand, size):
    frames = np.stack([frame_vector(face, hand, left=True, right=False, seed=s) for s in range(4)])
    assert frames.shape == (4, size)
    pose, left, right = split_frames(frames)
    np.testing.assert_array_equal(pose.reshape(4, -1), frames[:, :132])
    np.testing.assert_array_equal(left[:, 0], frames[:, 132 + 468 * face : 132 + 468 * face + 3])
    assert left.shape == right.shape == (4, 21, 3)
    assert not right.any()


def test_raw_folders_in_all_variants_and_bad_sequences(tmp_path):
    root = tmp_path / "MP_Data"
    for label, (face, hand) in enumerate([(3, 3), (4, 4)]):
        for seq in range(2):
            folder = root / f"sign{label}" / str(seq)
            folder.mkdir(parents=True)
            for f in range(5):
                np.save(folder / f"{f}.npy", frame_vector(face, hand, left=f % 2 == 0, right=True, seed=f))
    (root / "sign1" / "9").mkdir()
    np.save(root / "sign1" / "9" / "0.npy", np.zeros(100))
    dataset, report = import_mpdata(tmp_path)
    assert dataset.names.tolist() == ["sign0/0", "sign0/1", "sign1/0", "sign1/1"]
    assert dataset.hand_present[0, :5].tolist() == [[f % 2 == 0, True] for f in range(5)]
    assert [(item, reason) for item, reason, _ in report.skipped] == [("sign1/9", "unreadable sequence")]
    assert "1662" in report.skipped[0][2]


def test_mirrored_recordings_are_flipped_back_and_sides_swapped(shared_file):
    path = shared_file("mp_holistic_signs/signer_Bhavyagokhroo.npz")
    plain = read_signer_file(path)
    mirrored = read_signer_file(path, mirrored=True)
    left_wrist, right_wrist = MP33.index("left_wrist"), MP33.index("right_wrist")
    seen = plain.body[0, :, right_wrist, 3] > 0
    np.testing.assert_allclose(
        mirrored.body[0, seen, left_wrist, 0], 1.0 - plain.body[0, seen, right_wrist, 0], atol=1e-6
    )
    np.testing.assert_array_equal(mirrored.hand_present[0, :, 0], plain.hand_present[0, :, 1])
    np.testing.assert_array_equal(mirrored.body[0, :, left_wrist, 1:], plain.body[0, :, right_wrist, 1:])
    assert not mirrored.hands[0][~mirrored.hand_present[0]].any()  # absent hands stay zero
