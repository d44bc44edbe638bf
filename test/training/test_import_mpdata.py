"""MediaPipe Holistic tutorial data: raw MP_Data folders, repacked signer files, hand sides."""

from __future__ import annotations

import io
import re
import tracemalloc
import zipfile

import numpy as np
import pytest

from bharnet_ros.core.layouts import MP33
from bharnet_ros.training.dataset import DatasetError
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


def test_raw_example_matches_the_repacked_signer_file(mp_raw_example, shared_file):
    raw, report = import_mpdata(mp_raw_example)
    assert raw.names.tolist() == ["hello/0"]
    assert raw.class_names == ["hello"]
    assert report.skipped == []
    assert (raw.layout, raw.space, raw.max_persons) == ("mediapipe33", "image", 1)
    assert raw.frame_counts.tolist() == [30]
    np.testing.assert_allclose(raw.timestamps, np.arange(30) / 30.0)
    with np.load(shared_file("mp_holistic_signs/signer_25kamalesh.npz"), allow_pickle=False) as packed:
        assert packed["seq_id"][0] == 0
        np.testing.assert_array_equal(raw.body[0], packed["pose"][0])
    assert not raw.hand_present.any()  # in this clip both hands stay below the frame


def test_raw_folder_with_a_fixed_class_order_reports_empty_classes(mp_raw_example):
    raw, report = import_mpdata(mp_raw_example / "MP_Data", classes=["thanks", "hello", "iloveyou"])
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


def test_folder_of_signers_gets_subject_ids(mp_signers):
    dataset, report = import_mpdata(mp_signers)
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
    superscript = root / "sign0" / "\u00b2"  # str.isdigit says yes, int says no
    superscript.mkdir()
    for f in range(5):
        np.save(superscript / f"{f}.npy", frame_vector(3, 3, left=True, right=True, seed=f))
    np.save(root / "sign0" / "0" / "\u00b2.npy", np.zeros(100))  # not a numbered frame: left alone
    dataset, report = import_mpdata(tmp_path)
    assert dataset.names.tolist() == ["sign0/0", "sign0/1", "sign0/\u00b2", "sign1/0", "sign1/1"]
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


def signer_arrays(samples: int = 2, frames: int = 3) -> dict[str, np.ndarray]:
    """The arrays of a small, valid repacked signer file."""
    rng = np.random.default_rng(0)
    return {
        "pose": rng.random((samples, frames, 33, 4)).astype(np.float32),
        "left_hand": rng.random((samples, frames, 21, 3)),
        "right_hand": rng.random((samples, frames, 21, 3)),
        "label": np.arange(samples) % 2,
        "class_names": np.array(["hello", "thanks"]),
    }


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"pose": np.zeros(5)}, "pose has shape (5,)"),
        ({"pose": np.zeros((2, 3, 20, 4))}, "expected (samples, frames, 33, 4)"),
        ({"pose": np.full((2, 3, 33, 4), "x")}, "must hold numbers"),
        ({"left_hand": np.zeros((2, 3, 21, 2))}, "left_hand has shape (2, 3, 21, 2)"),
        ({"right_hand": np.zeros((2, 4, 21, 3))}, "right_hand has shape"),
        ({"label": np.arange(3)}, "label must be 2 integers"),
        ({"label": np.array([0.0, 1.0])}, "label must be 2 integers"),
        ({"label": np.array(1)}, "label must be 2 integers"),
        ({"label": np.array([0, 7])}, "do not index the 2 class_names"),
        ({"label": np.array([0, -1])}, "do not index the 2 class_names"),
        ({"class_names": np.array([1.5, 2.5])}, "class_names must be"),
        ({"class_names": np.array([["a", "b"]])}, "class_names must be"),
        ({"seq_id": np.arange(1)}, "seq_id has shape (1,)"),
        (signer_arrays(frames=0), "no samples or no frames"),
        (signer_arrays(samples=0), "no samples or no frames"),
        ({"pose": np.full((2, 3, 33, 4), np.nan)}, "NaN or infinite"),
    ],
)
def test_signer_files_of_the_wrong_type_or_shape_are_skipped_with_a_reason(tmp_path, change, reason):
    np.savez(tmp_path / "signer_good.npz", **signer_arrays())
    np.savez(tmp_path / "signer_bad.npz", **{**signer_arrays(), **change})
    dataset, report = import_mpdata(tmp_path)
    assert set(dataset.subject_names().tolist()) == {"good"}
    [(item, why, detail)] = report.skipped
    assert (item, why) == ("signer_bad.npz", "unreadable signer file")
    assert reason in detail


def npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    """A .npy header that declares ``shape``, followed by a few bytes of data."""
    stream = io.BytesIO()
    np.lib.format.write_array_header_1_0(stream, {"descr": descr, "fortran_order": False, "shape": shape})
    return stream.getvalue() + bytes(64)


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (npy_header((10**11,)), "declares shape (100000000000,)"),
        (npy_header((-5,)), "declares shape (-5,)"),
        (npy_header((65 << 20,), "|i1"), "declares shape (68157440,)"),  # 1 GiB of int8 took 12 GB
        (npy_header((2, 3, 33, 4)), "truncated"),
        (npy_header((2,), "|O"), "Python objects"),
        (b"not an array", "magic"),
    ],
    ids=[
        "huge shape",
        "negative shape",
        "int8 past 64 MiB with the rest",
        "truncated",
        "objects",
        "no magic",
    ],
)
def test_signer_array_headers_are_checked_before_allocating(tmp_path, member, reason):
    arrays = signer_arrays()
    with zipfile.ZipFile(tmp_path / "signer_bad.npz", "w") as archive:
        for key, array in arrays.items():
            stream = io.BytesIO()
            np.save(stream, array)
            archive.writestr(f"{key}.npy", member if key == "pose" else stream.getvalue())
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=re.escape(reason)):  # DatasetError, or numpy's for magic
            read_signer_file(tmp_path / "signer_bad.npz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 24


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (npy_header((10**11,)), "declares shape"),
        (npy_header((1662,)), "truncated"),
        (npy_header((3,), "|O"), "Python objects"),
        (b"", "EOF"),
    ],
    ids=["huge shape", "truncated", "objects", "empty file"],
)
def test_raw_frame_files_are_checked_before_allocating(tmp_path, frame, reason):
    folder = tmp_path / "MP_Data" / "hello"
    for seq in ("0", "1"):
        (folder / seq).mkdir(parents=True)
        for f in range(3):
            np.save(folder / seq / f"{f}.npy", frame_vector(3, 3, left=True, right=True, seed=f))
    (folder / "1" / "1.npy").write_bytes(frame)
    dataset, report = import_mpdata(tmp_path)
    assert dataset.names.tolist() == ["hello/0"]
    [(item, why, detail)] = report.skipped
    assert (item, why) == ("hello/1", "unreadable sequence")
    assert reason in detail


def raw_tree(root, classes=("hello",), sequences=("0", "1")):
    for name in classes:
        for seq in sequences:
            (root / "MP_Data" / name / seq).mkdir(parents=True)
            for f in range(3):
                np.save(
                    root / "MP_Data" / name / seq / f"{f}.npy",
                    frame_vector(3, 3, left=True, right=True, seed=f),
                )
    return root / "MP_Data"


@pytest.mark.parametrize(
    ("write", "reason"),
    [
        (
            lambda seq: np.save(seq / "1.npy", np.zeros(1662, "datetime64[s]")),
            "datetime64[s] values, not numbers",
        ),
        (lambda seq: np.save(seq / "01.npy", np.zeros(1662)), "two frame files have one number"),
    ],
    ids=["a date frame (a traceback)", "05.npy and 5.npy (one frame read twice)"],
)
def test_a_raw_sequence_of_odd_frames_is_skipped_by_name(tmp_path, write, reason):
    write(raw_tree(tmp_path) / "hello" / "1")
    dataset, report = import_mpdata(tmp_path)
    assert dataset.names.tolist() == ["hello/0"]
    [(item, why, detail)] = report.skipped
    assert (item, why) == ("hello/1", "unreadable sequence")
    assert reason in detail


def test_mp_data_is_read_whatever_npz_file_lies_beside_it(tmp_path):
    """An earlier import's output beside MP_Data turned the import into a signer import, which failed."""
    raw_tree(tmp_path)
    np.savez(tmp_path / "old_output.npz", x=np.zeros(3))
    dataset, report = import_mpdata(tmp_path)
    assert dataset.names.tolist() == ["hello/0", "hello/1"]
    assert "left out the .npz files beside it: old_output.npz" in " ".join(report.notes)


def test_raw_class_folders_left_out_by_classes_are_noted(tmp_path):
    raw_tree(tmp_path, classes=("hello", "thanks"))
    dataset, report = import_mpdata(tmp_path, classes=["thanks"])
    assert dataset.class_names == ["thanks"]
    assert "classes left out (not in --classes): hello" in report.notes


@pytest.mark.parametrize("fps", [float("nan"), float("-inf"), 0.0, -1.0, 1001.0])
def test_a_bad_frame_rate_is_refused(tmp_path, fps):
    """The frame rate is checked before the source is read, so any source will do."""
    with pytest.raises(DatasetError, match="--fps"):
        import_mpdata(tmp_path, fps=fps)


def test_a_signer_file_packed_with_an_unknown_compression_is_skipped(tmp_path):
    np.savez(tmp_path / "signer_good.npz", **signer_arrays())
    np.savez(tmp_path / "signer_odd.npz", **signer_arrays())
    data = bytearray((tmp_path / "signer_odd.npz").read_bytes())
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):  # local and central headers
        start = data.find(signature)
        while start >= 0:
            data[start + offset : start + offset + 2] = (99).to_bytes(2, "little")  # no such method
            start = data.find(signature, start + 4)
    (tmp_path / "signer_odd.npz").write_bytes(bytes(data))
    dataset, report = import_mpdata(tmp_path)
    assert set(dataset.subject_names().tolist()) == {"good"}
    [(item, _, detail)] = report.skipped
    assert item == "signer_odd.npz"
    assert "cannot be unpacked" in detail


def test_the_cameras_image_size_can_be_given_so_training_corrects_the_aspect(shared_file, tmp_path, capsys):
    """Neither format stores it: signs.npz trained uncorrected while the live node corrects."""
    from bharnet_ros.cli import main
    from bharnet_ros.training.data import uncorrected_aspect_note
    from bharnet_ros.training.dataset import SkeletonDataset

    path = shared_file("mp_holistic_signs/signer_Atulkoirala.npz")
    unknown, _ = import_mpdata(path)
    assert uncorrected_aspect_note(unknown, True)[0].startswith(f"{len(unknown)} of {len(unknown)} training")
    assert uncorrected_aspect_note(unknown, False) == []
    out = tmp_path / "signs.npz"
    assert main(["import", "mpdata", str(path), "-o", str(out), "--image-size", "640x480"]) == 0
    sized = SkeletonDataset.load(out)
    assert sized.image_sizes.tolist() == [[640, 480]] * len(sized)
    assert uncorrected_aspect_note(sized, True) == []
    capsys.readouterr()
    for bad in ("640", "0x480", "64000x4"):
        with pytest.raises(SystemExit):
            main(["import", "mpdata", str(path), "-o", str(tmp_path / "x.npz"), "--image-size", bad])
        assert "--image-size" in capsys.readouterr().err


def test_signer_files_spelling_one_class_two_ways_are_refused_unless_renamed(tmp_path, capsys):
    """Two classes, Hello and hello, were written without a word; training refused them later."""
    from bharnet_ros.cli import main

    (tmp_path / "signers").mkdir()
    for signer, names in (("a", ["Hello", "thanks"]), ("b", ["hello", "thanks"])):
        arrays = {**signer_arrays(), "class_names": np.array(names)}
        np.savez(tmp_path / "signers" / f"signer_{signer}.npz", **arrays)
    argv = ["import", "mpdata", str(tmp_path / "signers"), "-o", str(tmp_path / "x.npz"), "--no-progress"]
    assert main(argv) == 2
    assert "'Hello' and 'hello' are one word spelt two ways" in capsys.readouterr().err
    assert main([*argv, "--rename", "hello=Hello"]) == 0
