"""The pose stage as the pose node and ``bharnet extract`` run it: any backend, mirrored input undone.

* ``"holistic"`` and ``"hands_pose"``: one person per image (:class:`~bharnet_ros.core.pose.PoseEstimator`),
  person id 0, a frame for every image (zeros when nobody is found).
* ``"multi"``: every person, each with the id of their track
  (:class:`~bharnet_ros.core.pose_multi.MultiPoseEstimator`), a frame per person found.

Some cameras deliver mirror images: the Kinect v2 colour stream (and so the NTU RGB+D videos) and
webcams in selfie mode. MediaPipe then names the subject's left hand their right, and lateral
gestures flip. With ``mirrored_input`` the image is flipped horizontally before the pose stage, so
left is the subject's left again; the returned image is the un-mirrored one, which is the image
the landmarks (and any overlay) refer to.
"""

from __future__ import annotations

import cv2
import numpy as np

from bharnet_ros.core.closeable import Closeable
from bharnet_ros.core.draw import draw_skeleton
from bharnet_ros.core.image import check_image
from bharnet_ros.core.layouts import MP33
from bharnet_ros.core.pose import BACKENDS, PoseEstimator
from bharnet_ros.core.pose_multi import NUM_POSES, MultiPoseEstimator
from bharnet_ros.core.skeleton import SkeletonFrame, checked_image_size

MULTI = "multi"
ALL_BACKENDS = (*BACKENDS, MULTI)
NOSE = MP33.index("nose")  # where a person's id tag goes, and where they stand (core.pose_eval)
TAG_COLOR = (255, 255, 255)


class PoseStage(Closeable):
    """One video stream's pose stage; create one per stream (MediaPipe tracks between frames).

    ``next_person_id`` (``multi`` only) is the first new person's id: a stage that replaces
    another on the same stream takes the old one's :attr:`next_person_id`, so ids are not reused.
    """

    def __init__(
        self,
        backend: str = "holistic",
        num_poses: int = NUM_POSES,
        mirrored_input: bool = False,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        next_person_id: int | None = None,
    ) -> None:
        if backend not in ALL_BACKENDS:
            raise ValueError(f"unknown pose backend {backend!r}; use one of {ALL_BACKENDS}")
        self.backend = backend
        self.mirrored_input = mirrored_input
        confidences = {
            "min_detection_confidence": min_detection_confidence,
            "min_tracking_confidence": min_tracking_confidence,
        }
        if backend == MULTI:
            self._estimator: PoseEstimator | MultiPoseEstimator = MultiPoseEstimator(
                num_poses, **confidences, next_id=next_person_id
            )
        else:
            self._estimator = PoseEstimator(backend, **confidences)

    @property
    def multi(self) -> bool:
        return self.backend == MULTI

    @property
    def next_person_id(self) -> int | None:
        """The id the next new person gets (``multi``); None for the single-person back ends (id 0)."""
        if isinstance(self._estimator, MultiPoseEstimator):
            return self._estimator.tracker.next_id
        return None

    def close(self) -> None:
        """Free the MediaPipe graphs; safe to call twice."""
        self._estimator.close()

    def process(
        self, image_bgr: np.ndarray, timestamp: float, camera_size: tuple[int, int] | None = None
    ) -> tuple[np.ndarray, list[SkeletonFrame]]:
        """(the image the landmarks refer to, the persons' frames) for one camera image.

        Single-person backends return exactly one frame (check ``person_found``); ``multi``
        returns one frame per person found, ordered by id. ``camera_size`` (width, height) is the
        camera's, for an image shrunk before it came here; the frames report it as their
        ``image_size`` (landmarks are normalised, so the shrinking does not move them).
        """
        image = unmirror(image_bgr) if self.mirrored_input else image_bgr
        size = None if camera_size is None else checked_image_size(camera_size)  # before MediaPipe tracks it
        if isinstance(self._estimator, MultiPoseEstimator):
            frames = self._estimator.estimate(image, timestamp, camera_size)
        else:
            frames = [self._estimator.estimate(image, timestamp)]
        if size is not None:
            for frame in frames:
                frame.image_size = size
        return image, frames


def unmirror(image: np.ndarray) -> np.ndarray:
    """The image flipped left to right: a mirrored camera's view as a normal camera sees it.
    ImageError for what the pose stage refuses."""
    check_image(image)
    return cv2.flip(image, 1)


def draw_persons(
    image_bgr: np.ndarray, frames: list[SkeletonFrame], label: str | None = None, show_ids: bool = False
) -> np.ndarray:
    """A drawn copy of the image: every person's skeleton, ``label`` in the corner and, with
    ``show_ids``, each person's track id above their head, so tracks can be followed."""
    canvas = image_bgr
    for index, frame in enumerate(frames):
        canvas = draw_skeleton(canvas, frame, label=label if index == 0 else None)
    if not frames:
        canvas = draw_skeleton(image_bgr, SkeletonFrame.empty(0.0), label=label)
    if show_ids:
        _tag_ids(canvas, frames)
    return canvas


def _tag_ids(canvas: np.ndarray, frames: list[SkeletonFrame]) -> None:
    """Write ``id N`` above each person's nose, in place."""
    height, width = canvas.shape[:2]
    scale = max(0.4, height / 960)
    for frame in frames:
        if frame.body_present:
            x, y = frame.body[NOSE, :2]
            column = int(np.clip(x * width, 0, width - 1))
            row = int(np.clip(y * height - 40 * scale, 12, height - 1))
            text = f"id {frame.person_id}"
            cv2.putText(canvas, text, (column, row), cv2.FONT_HERSHEY_SIMPLEX, scale, TAG_COLOR, 2)
