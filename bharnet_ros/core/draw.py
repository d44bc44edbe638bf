"""Drawing a :class:`SkeletonFrame` onto its image, for the extract overlay and the ROS overlay topic.

The bones drawn are exactly the layout trees (``layouts.py``) the model uses, so the picture shows
what the network sees. Body joints below ``min_score`` (MediaPipe visibility) are left out. The
subject's left hand is orange and the right hand cyan; the body's left side is drawn in a lighter
shade of the left-hand colour and its right side in a lighter cyan, so a swapped side is visible.
"""

from __future__ import annotations

import cv2
import numpy as np

from bharnet_ros.core.image import to_bgr
from bharnet_ros.core.layouts import HAND21, get_layout
from bharnet_ros.core.skeleton import LEFT, RIGHT, SkeletonFrame

Color = tuple[int, int, int]  # BGR
HAND_COLORS: dict[int, Color] = {LEFT: (0, 140, 255), RIGHT: (255, 200, 0)}
BODY_COLORS: dict[str, Color] = {"left": (120, 190, 255), "right": (255, 230, 140), "centre": (235, 235, 235)}
TEXT_COLOR: Color = (255, 255, 255)


def draw_skeleton(
    image_bgr: np.ndarray, frame: SkeletonFrame, label: str | None = None, min_score: float = 0.5
) -> np.ndarray:
    """Return a BGR copy of ``image_bgr`` with the body, the present hands and ``label`` drawn.

    ``frame`` must be in the ``"image"`` space (x, y as fractions of width and height). Mono and
    BGRA images are accepted and converted; the input array is never modified.
    """
    if frame.space != "image":
        raise ValueError(f"can only draw image-space skeletons, this frame is in {frame.space!r} space")
    canvas = to_bgr(image_bgr)
    thickness = max(1, round(min(canvas.shape[:2]) / 240))
    _draw_body(canvas, frame, min_score, thickness)
    for slot in (LEFT, RIGHT):
        if frame.hand_present[slot]:
            _draw_tree(canvas, _pixels(frame.hands[slot], canvas), HAND21.edges, HAND_COLORS[slot], thickness)
    if label:
        _draw_label(canvas, label, thickness)
    return canvas


def _pixels(joints: np.ndarray, canvas: np.ndarray) -> list[tuple[int, int]]:
    """Integer pixel positions of image-space joints, as the tuples OpenCV's drawing calls take."""
    height, width = canvas.shape[:2]
    return [(int(u), int(v)) for u, v in np.round(joints[:, :2] * (width, height))]


def _side_color(joint_name: str) -> Color:
    side = (
        "left" if joint_name.startswith("left") else "right" if joint_name.startswith("right") else "centre"
    )
    return BODY_COLORS[side]


def _draw_body(canvas: np.ndarray, frame: SkeletonFrame, min_score: float, thickness: int) -> None:
    if not frame.body_present:
        return
    layout = get_layout(frame.layout)
    points = _pixels(frame.body, canvas)
    visible = frame.body[:, 3] >= min_score
    for child, parent in layout.edges:
        if visible[child] and visible[parent]:
            color = _side_color(layout.joint_names[child])
            cv2.line(canvas, points[child], points[parent], color, thickness, cv2.LINE_AA)
    for joint in np.flatnonzero(visible):
        cv2.circle(canvas, points[joint], thickness + 1, _side_color(layout.joint_names[joint]), -1)


def _draw_tree(
    canvas: np.ndarray,
    points: list[tuple[int, int]],
    edges: tuple[tuple[int, int], ...],
    color: Color,
    thickness: int,
) -> None:
    for child, parent in edges:
        cv2.line(canvas, points[child], points[parent], color, thickness, cv2.LINE_AA)
    for point in points:
        cv2.circle(canvas, point, thickness, color, -1)


def _draw_label(canvas: np.ndarray, label: str, thickness: int) -> None:
    """Text at the top left on a dark box, so it reads on any background."""
    scale = 0.4 * thickness
    (width, height), baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    cv2.rectangle(canvas, (0, 0), (width + 8, height + baseline + 8), (0, 0, 0), -1)
    org = (4, height + 4)
    cv2.putText(canvas, label, org, cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT_COLOR, thickness, cv2.LINE_AA)
