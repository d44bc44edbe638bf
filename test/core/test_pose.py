"""The pose stage on real photos and video (MediaPipe), plus its input checks and hand assignment."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from bharnet_ros.core.image import ImageError, to_rgb
from bharnet_ros.core.layouts import MP33
from bharnet_ros.core.pose import BACKENDS, PoseEstimator, assign_hand_slots, hand_slot_costs
from bharnet_ros.core.skeleton import LEFT, RIGHT, SkeletonError, SkeletonFrame
from bharnet_ros.core.video import VideoReader

PHOTOS = "images/gesture_photos"
VIDEO = "videos/sign_dobrii_den.mp4"


@pytest.fixture(scope="module")
def static_estimator():
    """``static_estimator(backend)``: one still-image estimator per backend for the whole module."""
    made: dict[str, PoseEstimator] = {}

    def get(backend: str) -> PoseEstimator:
        if backend not in made:
            made[backend] = PoseEstimator(backend, static_image_mode=True)
        return made[backend]

    yield get
    for estimator in made.values():
        estimator.close()


@pytest.fixture(scope="module", params=BACKENDS)
def photo_frames(request, shared_files, static_estimator) -> list[tuple[SkeletonFrame, tuple[int, int]]]:
    """(frame, (width, height)) for each of the 40 gesture photos."""
    paths = shared_files(PHOTOS, "*.jpg", 40)
    assert len(paths) == 40  # the set the expectations below were measured on, no more
    estimator = static_estimator(request.param)
    out = []
    for path in paths:
        image = cv2.imread(str(path))
        out.append((estimator.estimate(image, 0.0), (image.shape[1], image.shape[0])))
    return out


@pytest.fixture(scope="module", params=BACKENDS)
def video_frames(request, shared_file) -> list[tuple[SkeletonFrame, tuple[int, int]]]:
    """(frame, (width, height)) for every frame of the sign-language clip, tracking mode."""
    with VideoReader(shared_file(VIDEO)) as reader, PoseEstimator(request.param) as estimator:
        return [(estimator.estimate(image, t), reader.info.size) for t, image in reader]


def wrist_mismatches(results: list[tuple[SkeletonFrame, tuple[int, int]]]) -> list[tuple[int, int]]:
    """(result index, slot) where a present hand's wrist is not nearer its own side's pose wrist."""
    bad = []
    for i, (frame, size) in enumerate(results):
        if not frame.body_present:
            continue
        for slot, own, other in ((LEFT, 15, 16), (RIGHT, 16, 15)):
            if frame.hand_present[slot]:
                wrist = frame.hands[slot, 0, :2] * size
                d_own = np.linalg.norm(wrist - frame.body[own, :2] * size)
                d_other = np.linalg.norm(wrist - frame.body[other, :2] * size)
                if d_own >= d_other:
                    bad.append((i, slot))
    return bad


def test_hands_found_on_most_gesture_photos(photo_frames):
    # Measured 36/40 photos with a hand for both backends (docs/pose_stage.md).
    with_hand = sum(frame.hand_present.any() for frame, _ in photo_frames)
    assert with_hand >= 30


def test_body_found_on_gesture_photos(photo_frames):
    # Measured 39/40 for both backends.
    assert sum(frame.body_present for frame, _ in photo_frames) >= 35


def test_hand_slots_follow_pose_wrists_on_photos(photo_frames):
    assert wrist_mismatches(photo_frames) == []


def test_body_on_every_video_frame_and_hands_on_some(video_frames):
    assert len(video_frames) == 100
    assert all(frame.body_present for frame, _ in video_frames)
    present = np.array([frame.hand_present for frame, _ in video_frames])
    # Measured left/right: holistic 32/28, hands_pose 39/25 frames.
    assert present[:, LEFT].sum() >= 15
    assert present[:, RIGHT].sum() >= 15


def test_hand_slots_follow_pose_wrists_on_video(video_frames):
    assert wrist_mismatches(video_frames) == []


def test_frames_follow_the_contract(video_frames):
    timestamps = [frame.timestamp for frame, _ in video_frames]
    assert timestamps == pytest.approx(np.arange(100) / 25.0)
    for frame, _ in video_frames:
        assert (frame.layout, frame.space, frame.person_id) == ("mediapipe33", "image", 0)
        assert frame.body.shape == (MP33.num_joints, 4)
        assert np.all((frame.body[:, 3] >= 0) & (frame.body[:, 3] <= 1))
        assert not frame.hands[~frame.hand_present].any()
        assert np.all(frame.hands[frame.hand_present][..., 3] > 0)
    torso = np.array([frame.body[[11, 12], :2] for frame, _ in video_frames])
    assert np.all((torso > 0) & (torso < 1))  # the shoulders are in view in this clip


def test_blank_image_gives_empty_frame(static_estimator):
    frame = static_estimator("holistic").estimate(np.zeros((240, 320, 3), np.uint8), 1.5, person_id=3)
    assert not frame.body_present
    assert not frame.hand_present.any()
    assert not frame.body.any()
    assert (frame.timestamp, frame.person_id) == (1.5, 3)


@pytest.mark.parametrize("backend", ["holistic", "hands_pose"])
def test_a_frame_reports_the_camera_size_of_an_image_shrunk_for_mediapipe(static_estimator, backend):
    frame = static_estimator(backend).estimate(np.zeros((9000, 100, 3), np.uint8), 1.0)
    assert frame.image_size == (100, 9000)  # MediaPipe saw 8192 x 91, the camera gave 9000 x 100
    with pytest.raises(SkeletonError, match="no camera image"):  # 300:1, x would be scaled by 300
        static_estimator(backend).estimate(np.zeros((9000, 30, 3), np.uint8), 1.0)


def test_mono_and_bgra_images_are_accepted(shared_files, static_estimator):
    photo = shared_files(PHOTOS, "four_*.jpg", 1)[0]
    bgr = cv2.imread(str(photo))
    estimator = static_estimator("holistic")
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    for image in (gray, gray[:, :, None], cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)):
        assert estimator.estimate(image, 0.0).body_present


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (None, "NoneType"),
        ([[0, 0], [0, 0]], "list"),
        (np.zeros((8, 8, 3), np.float32), "dtype float32"),
        (np.zeros((0, 8, 3), np.uint8), "empty"),
        (np.zeros((8, 0), np.uint8), "empty"),
        (np.zeros((8, 8, 2), np.uint8), "shape (8, 8, 2)"),
        (np.zeros((8, 8, 5), np.uint8), "shape"),
        (np.zeros((2, 8, 8, 3), np.uint8), "shape"),
        (np.zeros(8, np.uint8), "shape"),
    ],
)
def test_bad_images_raise_image_error(image, message):
    with pytest.raises(ImageError, match=re.escape(message)):
        to_rgb(image)


def test_estimate_rejects_bad_image(static_estimator):
    with pytest.raises(ImageError, match="uint8"):
        static_estimator("holistic").estimate(np.zeros((8, 8, 3), np.float64), 0.0)


def test_to_rgb_converts_channel_order():
    bgr = np.zeros((2, 3, 3), np.uint8)
    bgr[..., 0] = 255  # blue
    assert to_rgb(bgr)[0, 0].tolist() == [0, 0, 255]
    assert to_rgb(np.full((2, 3, 1), 7, np.uint8)).shape == (2, 3, 3)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="backend"):
        PoseEstimator("openpose")
    with pytest.raises(ValueError, match="min_detection_confidence"):
        PoseEstimator(min_detection_confidence=1.5)


def test_closed_estimator_refuses_work():
    estimator = PoseEstimator("hands_pose")
    estimator.close()
    estimator.close()
    with pytest.raises(RuntimeError, match="closed"):
        estimator.estimate(np.zeros((8, 8, 3), np.uint8), 0.0)


def test_hands_go_to_the_nearest_pose_wrist():
    pose_wrists = np.array([[200.0, 100.0], [50.0, 100.0]])  # subject's left wrist is on image right
    hands = np.array([[60.0, 90.0], [190.0, 110.0]])
    costs = hand_slot_costs(hands, pose_wrists, [LEFT, LEFT], np.array([0.9, 0.9]))
    assert assign_hand_slots(costs) == [RIGHT, LEFT]


def test_second_hand_on_the_same_wrist_is_dropped():
    pose_wrists = np.array([[200.0, 100.0], [50.0, 100.0]])
    hands = np.array([[185.0, 100.0], [198.0, 102.0]])
    costs = hand_slot_costs(hands, pose_wrists, [LEFT, RIGHT], np.array([0.5, 0.99]))
    assert assign_hand_slots(costs) == [None, LEFT]


def test_without_body_the_label_decides_and_the_surer_hand_wins():
    hands = np.zeros((2, 2))
    assert assign_hand_slots(hand_slot_costs(hands, None, [RIGHT, LEFT], np.array([0.6, 0.9]))) == [
        RIGHT,
        LEFT,
    ]
    assert assign_hand_slots(hand_slot_costs(hands, None, [LEFT, LEFT], np.array([0.6, 0.9]))) == [None, LEFT]
    assert assign_hand_slots(np.zeros((0, 2))) == []


def test_a_mediapipe_without_the_legacy_api_is_named_with_the_fix(monkeypatch):
    """rosdep's pip key installs the newest mediapipe, which has no mediapipe.python.solutions."""
    import importlib

    from bharnet_ros.core.pose import import_mediapipe

    def missing(name, package=None):
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr(importlib, "import_module", missing)  # the edge: which wheel is installed
    with pytest.raises(RuntimeError, match="runs on mediapipe==0.10.21.*requirements-runtime.txt"):
        import_mediapipe("mediapipe.python.solutions.holistic")


def test_a_landmark_far_outside_the_image_costs_its_part_not_the_frame():
    """One body joint MediaPipe placed at x = 50 (the contract takes up to ±10 in image space):
    the body is left out and the frame keeps both hands, where the contract refused all of it."""
    from types import SimpleNamespace

    def landmarks(count: int, x: float = 0.5, wild: float | None = None) -> SimpleNamespace:
        points = [SimpleNamespace(x=x, y=0.5, z=0.0, visibility=0.9) for _ in range(count)]
        if wild is not None:
            points[-1].x = wild
        return SimpleNamespace(landmark=points)

    result = SimpleNamespace(
        pose_landmarks=landmarks(33, wild=50.0),
        left_hand_landmarks=landmarks(21, 0.6),
        right_hand_landmarks=None,
    )
    estimator = PoseEstimator.__new__(PoseEstimator)  # MediaPipe's output is the edge, not the subject
    estimator.backend = "holistic"
    estimator._graphs = {"holistic": SimpleNamespace(process=lambda rgb: result)}
    frame = estimator.estimate(np.zeros((48, 64, 3), np.uint8), 1.0)
    assert not frame.body.any()
    assert frame.hand_present.tolist() == [True, False]
    assert np.allclose(frame.hands[0, :, 0], 0.6)
    result.pose_landmarks = landmarks(33, wild=-9.5)  # within the contract: kept
    assert estimator.estimate(np.zeros((48, 64, 3), np.uint8), 2.0).body[-1, 0] == pytest.approx(-9.5)


@pytest.mark.parametrize("backend", ["holistic", "hands_pose"])
def test_an_image_refused_for_its_camera_size_never_reaches_mediapipe(backend, monkeypatch):
    """The shrunk image went through MediaPipe before the camera's 20000 x 1 was refused: a frame
    counted as bad moved the next good frame's joints by 20 px (MediaPipe tracks across frames)."""
    from bharnet_ros.core.pose_stage import PoseStage

    with PoseStage(backend) as stage:
        calls = []
        monkeypatch.setattr(stage._estimator, "estimate", lambda *args, **kwargs: calls.append(args))
        with pytest.raises(SkeletonError, match="no camera image"):
            stage.process(np.zeros((82, 8192, 3), np.uint8), 1.0, camera_size=(20000, 1))
    assert calls == []
