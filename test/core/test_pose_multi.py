"""The multi-person pose stage: bundles built offline, hands given to bodies, real two-person clips,
and mirrored input undone for every back end."""

from __future__ import annotations

import threading
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from bharnet_ros.core import task_bundles
from bharnet_ros.core.compose import compose_pair
from bharnet_ros.core.image import ImageError
from bharnet_ros.core.pose_multi import MultiPoseEstimator, assign_hands_to_bodies
from bharnet_ros.core.pose_stage import PoseStage
from bharnet_ros.core.skeleton import LEFT, RIGHT, SkeletonError
from bharnet_ros.core.video import VideoReader

GREETING = "hri_gestures/S1/greeting_1_1m_upper.avi"  # waves with one hand
STOP = "hri_gestures/S2/stop_1_1m_upper.avi"


@pytest.fixture(scope="module")
def bundle_cache(tmp_path_factory) -> Path:
    """Bundles built once for this module, in a private cache (never the user's)."""
    folder = tmp_path_factory.mktemp("bundles")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(task_bundles.CACHE_ENV, str(folder))
        task_bundles.ensure_bundles()
    return folder


@pytest.fixture
def private_cache(bundle_cache, monkeypatch) -> Path:
    monkeypatch.setenv(task_bundles.CACHE_ENV, str(bundle_cache))
    return bundle_cache


def test_bundles_are_built_once_from_the_wheels_models(bundle_cache):
    bundles = task_bundles.ensure_bundles(bundle_cache)
    for path, members in ((bundles.pose, task_bundles.POSE_BUNDLE), (bundles.hand, task_bundles.HAND_BUNDLE)):
        with zipfile.ZipFile(path) as bundle:
            assert sorted(bundle.namelist()) == sorted(members.members)
            for info in bundle.infolist():
                assert info.compress_type == zipfile.ZIP_STORED
        built = path.stat().st_mtime_ns
        task_bundles.ensure_bundles(bundle_cache)
        assert path.stat().st_mtime_ns == built, "a built bundle is reused"
    assert sorted(p.name for p in bundle_cache.iterdir()) == sorted([bundles.pose.name, bundles.hand.name])


@pytest.mark.parametrize("damage", ["empty", "cut", "garbage", "other_bundle"])
def test_a_damaged_bundle_is_built_again_readable_by_every_user(bundle_cache, tmp_path, damage):
    """A file cut off by a power cut was trusted at every start, and MediaPipe failed on it with a
    message naming no file; bundles were the owner's alone, so a cache built at set-up by another
    user served no node."""
    import os
    import shutil

    folder = tmp_path / "cache"
    shutil.copytree(bundle_cache, folder)
    bundles = task_bundles.ensure_bundles(folder)
    good = bundles.pose.read_bytes()
    members = members_of(bundles.pose)
    broken = {
        "empty": b"",
        "cut": good[: len(good) // 2],
        "garbage": b"not a zip" * 100,
        "other_bundle": bundles.hand.read_bytes(),
    }[damage]
    bundles.pose.write_bytes(broken)
    (folder / f".{bundles.pose.stem}-killed.task").write_bytes(b"a build killed long ago")
    os.utime(folder / f".{bundles.pose.stem}-killed.task", (1e9, 1e9))
    assert members_of(task_bundles.ensure_bundles(folder).pose) == members
    assert bundles.pose.stat().st_mode & 0o044 == 0o044 & ~_umask()
    assert sorted(p.name for p in folder.iterdir()) == sorted([bundles.pose.name, bundles.hand.name])


def members_of(bundle: Path) -> list[tuple[str, int, int]]:
    with zipfile.ZipFile(bundle) as opened:
        return [(info.filename, info.file_size, info.CRC) for info in opened.infolist()]


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_bundle_that_cannot_be_built_is_one_line(tmp_path, monkeypatch, capsys):
    """A RuntimeError: `bharnet extract --backend multi` printed a 49-line double traceback."""
    from bharnet_ros.cli import main

    (tmp_path / "file").write_text("a file where the cache folder should be\n")
    monkeypatch.setenv(task_bundles.CACHE_ENV, str(tmp_path / "file"))
    video = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for _ in range(3):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    assert main(["extract", str(video), "-o", str(tmp_path / "x.npz"), "--backend", "multi"]) == 2
    err = capsys.readouterr().err
    assert "cannot build pose_landmarker" in err
    assert "set BHARNET_CACHE_DIR to a writable folder" in err
    assert len(err.strip().splitlines()) == 1


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(task_bundles.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert task_bundles.cache_dir() == tmp_path / "xdg" / "bharnet_ros"
    monkeypatch.setenv(task_bundles.CACHE_ENV, str(tmp_path / "mine"))
    assert task_bundles.cache_dir() == tmp_path / "mine"


def body_points(x: float) -> list[list[float]]:
    """Left wrist, right wrist, left shoulder, right shoulder of a person facing the camera at x."""
    return [[x + 60, 300], [x - 60, 300], [x + 40, 150], [x - 40, 150]]


def test_each_hand_goes_to_its_nearest_wrist():
    bodies = np.array([body_points(200), body_points(600)], np.float64)
    hands = np.array([[655, 305], [145, 295], [258, 302]], np.float64)
    slots = assign_hands_to_bodies(hands, [LEFT, RIGHT, LEFT], bodies, 1000.0)
    assert slots == [(1, LEFT), (0, RIGHT), (0, LEFT)]


def test_one_hand_per_wrist_and_far_hands_are_dropped():
    bodies = np.array([body_points(200)], np.float64)
    hands = np.array([[260, 300], [262, 301], [900, 100]], np.float64)
    slots = assign_hands_to_bodies(hands, [LEFT, LEFT, LEFT], bodies, 1000.0)
    assert slots == [(0, LEFT), None, None], "the nearer copy keeps the wrist; the far hand is nobody's"


def test_a_stray_hand_never_moves_a_body_s_own_hand_to_a_neighbour():
    """Placing as many hands as possible came first: a missed person's hand beside A's left wrist
    took it, and A's own hand, 3 px from that wrist and labelled left, went to B's right wrist."""
    a = [[360, 320], [240, 320], [340, 200], [260, 200]]  # left wrist, right wrist, shoulders
    b = [[520, 320], [400, 320], [500, 200], [420, 200]]
    hands = np.array([[362, 322], [345, 335]], np.float64)  # A's own, and a stranger's
    slots = assign_hands_to_bodies(hands, [LEFT, RIGHT], np.array([a, b], np.float64), 1000.0)
    assert slots == [(0, LEFT), None]


def test_the_tasks_label_settles_hands_between_both_wrists():
    folded = [[190, 300], [210, 300], [240, 150], [160, 150]]  # both wrists in front of the chest
    bodies = np.array([folded], np.float64)
    middle = np.array([[200, 300], [201, 300]], np.float64)
    assert assign_hands_to_bodies(middle, [RIGHT, LEFT], bodies, 1000.0) == [(0, RIGHT), (0, LEFT)]
    assert assign_hands_to_bodies(middle, [LEFT, RIGHT], bodies, 1000.0) == [(0, LEFT), (0, RIGHT)]


def test_no_hands_or_no_bodies():
    assert assign_hands_to_bodies(np.zeros((0, 2)), [], np.array([body_points(0)], float), 100.0) == []
    assert assign_hands_to_bodies(np.ones((1, 2)), [LEFT], np.zeros((0, 4, 2)), 100.0) == [None]


@pytest.fixture(scope="module")
def pair_clip(shared_file, tmp_path_factory) -> Path:
    """S1 greeting on the left, S2 stop on the right, as one 800x480 video (3.8 s)."""
    path = tmp_path_factory.mktemp("pair") / "greeting_stop.mp4"
    assert compose_pair(shared_file(GREETING), shared_file(STOP), path) > 60
    return path


@pytest.fixture(scope="module")
def pair_frames(pair_clip, bundle_cache):
    with MultiPoseEstimator(bundle_dir=str(bundle_cache)) as estimator, VideoReader(pair_clip) as reader:
        return [estimator.estimate(image, stamp) for stamp, image in reader]


def test_two_people_keep_one_id_each_for_the_whole_clip(pair_frames):
    by_side: dict[str, set[int]] = {"left": set(), "right": set()}
    for frames in pair_frames:
        assert len(frames) <= 2
        assert [f.person_id for f in frames] == sorted(f.person_id for f in frames)
        for frame in frames:
            by_side["left" if frame.body[0, 0] < 0.5 else "right"].add(frame.person_id)
    assert all(len(ids) == 1 for ids in by_side.values()), by_side
    assert by_side["left"] != by_side["right"]
    seen = [len(frames) for frames in pair_frames]
    assert seen.count(2) >= len(pair_frames) // 2, "both people found in most frames"


def test_hands_sit_on_their_own_bodys_wrists(pair_frames):
    checked = 0
    for frames in pair_frames:
        for frame in frames:
            width, height = frame.image_size
            for slot, wrist in ((LEFT, 15), (RIGHT, 16)):
                if frame.hand_present[slot]:
                    gap = (frame.hands[slot, 0, :2] - frame.body[wrist, :2]) * (width, height)
                    assert np.hypot(*gap) < 80, f"person {frame.person_id} slot {slot}: {gap} px"
                    checked += 1
    assert checked > 50
    waver = [f for frames in pair_frames for f in frames if f.body[0, 0] < 0.5]
    assert sum(f.hand_present.any() for f in waver) > len(waver) // 2


def test_frames_follow_the_contract(pair_frames):
    frame = next(f for frames in pair_frames for f in frames)
    assert (frame.layout, frame.space, frame.image_size) == ("mediapipe33", "image", (800, 480))
    assert frame.body.shape == (33, 4)
    assert frame.hands.shape == (2, 21, 4)


@pytest.mark.parametrize("tracking", [0.0, 1e-300])
def test_a_tracking_threshold_mediapipe_would_abort_on_is_refused(tracking, tmp_path):
    # the hand landmarker checks its association threshold > 0 (as a float32) by aborting
    with pytest.raises(ValueError, match="min_tracking_confidence must be above 0"):
        MultiPoseEstimator(min_tracking_confidence=tracking, bundle_dir=str(tmp_path))


def test_blank_images_find_nobody_and_closed_estimators_refuse(bundle_cache):
    before = set(threading.enumerate())
    estimator = MultiPoseEstimator(num_poses=2, bundle_dir=str(bundle_cache))
    assert estimator.estimate(np.zeros((120, 160, 3), np.uint8), 0.0) == []
    assert estimator.estimate(np.zeros((120, 160, 3), np.uint8), 0.0) == [], "equal stamps are fine"
    worker = {t for t in set(threading.enumerate()) - before if t.name.startswith("hand_landmarker")}
    assert worker, "the hand landmarker runs in its own thread"
    estimator.close()
    estimator.close()
    assert not worker & set(threading.enumerate()), "close() ends the worker"
    with pytest.raises(RuntimeError, match="closed"):
        estimator.estimate(np.zeros((120, 160, 3), np.uint8), 1.0)
    with pytest.raises(ValueError, match="num_poses"):
        MultiPoseEstimator(num_poses=0, bundle_dir=str(bundle_cache))


def test_a_bad_stamp_is_refused_and_the_frames_after_it_go_on(bundle_cache):
    """A stamp of 1e300 s once became the VIDEO-mode clock's floor and every later frame failed."""
    blank = np.zeros((120, 160, 3), np.uint8)
    with MultiPoseEstimator(num_poses=1, bundle_dir=str(bundle_cache)) as estimator:
        for stamp in (float("nan"), float("inf"), 1e300, "soon", None):
            with pytest.raises(SkeletonError, match="timestamp"):
                estimator.estimate(blank, stamp)
        assert estimator.estimate(blank, 1.0) == []
        assert estimator.estimate(blank, 0.5) == [], "a stamp going back is fine"


def test_the_video_clock_keeps_the_frames_spacing_after_a_stamp_from_the_future(bundle_cache):
    with MultiPoseEstimator(num_poses=1, bundle_dir=str(bundle_cache)) as estimator:
        clock = [estimator._video_ms(t) for t in (1.0, 2147483647.0, 1.1, 1.2, 1.2, 1.25)]
    assert clock[:2] == [1000, 2000]  # a jump moves it by 1 s at most
    assert np.diff(clock[1:]).tolist() == [1, 100, 1, 50]  # the later frames keep their spacing


def test_stamps_jumping_back_and_forth_keep_the_video_clock_small(bundle_cache):
    """Two clocks on one topic: each jump back once added its size to the clock, which passed
    int64 microseconds after some thousand frames, and every frame after failed."""
    with MultiPoseEstimator(num_poses=1, bundle_dir=str(bundle_cache)) as estimator:
        clock = [estimator._video_ms(t) for _ in range(5000) for t in (2147483647.0, 1.0)]
        blank = np.zeros((120, 160, 3), np.uint8)
        assert estimator.estimate(blank, 1.5) == []
    assert np.all(np.diff(clock) >= 1)
    assert clock[-1] < 2147483647000 + 10_000 * 1000


def test_a_strip_no_camera_gives_is_refused_before_the_clock_or_the_tracker_move(bundle_cache):
    """A 20000 x 150 strip ran MediaPipe and the tracker, then was refused per person (or, with
    nobody found, returned [] uncounted): refused first, as the stamps are."""
    with MultiPoseEstimator(num_poses=1, bundle_dir=str(bundle_cache)) as estimator:
        with pytest.raises(SkeletonError, match="no camera image"):
            estimator.estimate(np.zeros((150, 20000, 3), np.uint8), 1.0)
        assert estimator._last_ms == -1  # MediaPipe's video clock did not advance


def flipped_copy(source: Path, target: Path, frames: int) -> Path:
    """The first frames of a clip mirrored by OpenCV, stored losslessly (FFV1)."""
    with VideoReader(source) as reader:
        writer = cv2.VideoWriter(
            str(target), cv2.VideoWriter_fourcc(*"FFV1"), reader.info.fps, reader.info.size
        )
        for index, (_, image) in enumerate(reader):
            if index == frames:
                break
            writer.write(cv2.flip(image, 1))
    writer.release()
    return target


def run_stage(clip: Path, backend: str, mirrored: bool, frames: int) -> list:
    """The first person's frame per video frame (None where nobody was found)."""
    found = []
    with PoseStage(backend, mirrored_input=mirrored) as stage, VideoReader(clip) as reader:
        for index, (stamp, image) in enumerate(reader):
            if index == frames:
                break
            persons = [f for f in stage.process(image, stamp)[1] if f.person_found]
            found.append(persons[0] if persons else None)
    return found


@pytest.mark.parametrize("backend", ["holistic", "multi"])
def test_an_unmirrored_flipped_clip_gives_the_original_sides(backend, shared_file, tmp_path, private_cache):
    frames = 40
    original = shared_file(GREETING)
    flipped = flipped_copy(original, tmp_path / "flipped.avi", frames)
    truth = run_stage(original, backend, False, frames)
    unmirrored = run_stage(flipped, backend, True, frames)
    mirrored = run_stage(flipped, backend, False, frames)
    waving = [t for t, f in enumerate(truth) if f is not None and f.hand_present.sum() == 1]
    assert len(waving) >= 12, "the greeting clip shows one waving hand from frame 20 on"
    for t in waving:
        side = int(np.argmax(truth[t].hand_present))
        assert unmirrored[t] is not None
        assert list(unmirrored[t].hand_present) == list(truth[t].hand_present)
        assert np.allclose(unmirrored[t].body[15:17, :2], truth[t].body[15:17, :2], atol=0.02)
        if mirrored[t] is not None and mirrored[t].hand_present.sum() == 1:
            assert mirrored[t].hand_present[1 - side], "without un-mirroring the sides swap"


def test_a_body_or_hand_far_outside_the_image_is_left_out_not_an_error():
    """After a strange frame, MediaPipe's tracking can place landmarks far outside the image; the
    contract refuses those, and refusing the whole frame would come after the tracker moved on."""
    from types import SimpleNamespace

    from bharnet_ros.core.pose_multi import _body, _hands

    def point(x: float) -> SimpleNamespace:
        return SimpleNamespace(x=x, y=0.5, z=0.0, visibility=0.9)

    assert _body([point(0.5)] * 33) is not None
    assert _body([point(0.5)] * 32 + [point(50.0)]) is None
    side = [SimpleNamespace(category_name="Left", score=0.9)]
    result = SimpleNamespace(hand_landmarks=[[point(0.5)] * 21, [point(-40.0)] * 21], handedness=[side, side])
    hands, sides, _ = _hands(result)
    assert hands.shape == (1, 21, 4)


def test_a_change_of_the_shrinking_keeps_everyone_s_id(shared_file, private_cache):
    """`ros2 param set /pose max_image_pixels` shrinks the next images: the tracker measured in the
    shrunk image's pixels, so everyone jumped and got a new id."""
    with PoseStage("multi") as stage, VideoReader(shared_file(GREETING)) as reader:
        ids = []
        for index, (stamp, image) in zip(range(16), reader, strict=False):
            height, width = image.shape[:2]
            shown = image if index < 8 else cv2.resize(image, (width // 2, height // 2))
            ids.append([f.person_id for f in stage.process(shown, stamp, (width, height))[1]])
    assert ids[-1] == ids[7] == [0]


@pytest.mark.parametrize("mirrored", [False, True])
@pytest.mark.parametrize("backend", ["holistic", "multi"])
def test_what_is_no_image_is_an_image_error_in_every_stage(backend, mirrored, private_cache):
    """None, a list or a 1-D array gave AttributeError or IndexError, and a bool image through the
    mirroring a cv2.error: pose_stage.md promises ImageError for each."""
    bad = [None, [[0, 0]], np.zeros(8, np.uint8), np.zeros((8, 8), bool), np.zeros((2, 8, 8, 3), np.uint8)]
    with PoseStage(backend, mirrored_input=mirrored) as stage:
        for image in bad:
            with pytest.raises(ImageError):
                stage.process(image, 1.0)


def test_a_multi_stage_starts_its_ids_at_the_next_person_id_it_is_given(shared_file, private_cache):
    """The pose node hands a new stage the old one's count on a reconfigure, so ids are not reused."""
    with PoseStage("multi", next_person_id=5) as stage, VideoReader(shared_file(GREETING)) as reader:
        assert stage.next_person_id == 5
        found = [stage.process(image, stamp)[1] for _, (stamp, image) in zip(range(10), reader, strict=False)]
    assert [f.person_id for f in next(frames for frames in found if frames)] == [5]
    assert stage.next_person_id == 6
    with PoseStage("holistic") as single:
        assert single.next_person_id is None, "single-person stages say 0 for everyone: no count"


def test_a_hand_found_twice_is_one_hand():
    """A detector's copy of a hand (2 to 7 px off) took the other wrist: an invented hand."""
    from bharnet_ros.core.pose_multi import distinct_hands

    hand = np.stack([np.linspace(300, 320, 21), np.full(21, 300.0)], axis=-1)  # 9 px wrist to middle base
    copy, clasped = hand + 1.5, hand + np.array([0.0, 12.0])  # the other hand, 1.3 hand sizes away
    assert distinct_hands(np.stack([hand, copy]), [0.8, 0.9]) == [1]  # the surer of the two
    assert distinct_hands(np.stack([hand, clasped]), [0.9, 0.8]) == [0, 1]
    assert distinct_hands(np.zeros((0, 21, 2)), []) == []
