"""Filming the 3D skeleton: the camera, and what a pose estimator makes of the picture.

The camera and the estimator's style are drawn once per sequence; :func:`observe` projects the
skeleton and adds visibility scores (frame edges, occlusion), temporally correlated jitter with
spikes, and hand dropouts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from bharnet_ros.core.layouts import MP33
from bharnet_ros.core.skeleton import COORDINATE_LIMITS, SkeletonSequence
from bharnet_ros.training.synth.geometry import axis_rotation, smooth_wiggle
from bharnet_ros.training.synth.hands import PALM
from bharnet_ros.training.synth.kinematics import Subject


@dataclass(frozen=True)
class Camera:
    """A pinhole camera looking at the subject; the body is rotated by yaw and pitch, then shifted."""

    width: int
    height: int
    focal: float  # pixels
    rotation: np.ndarray  # (3, 3) body frame -> camera orientation (yaw, then pitch)
    distance: float  # metres from the camera to ``anchor``
    centre: tuple[float, float]  # pixel where ``anchor`` appears
    anchor: np.ndarray  # (3,) body-frame point that is framed: the middle of the shoulders
    z_gain: float  # how much MediaPipe-style body depth exaggerates metric depth
    hand_z_gain: float

    @property
    def offset(self) -> np.ndarray:
        """Camera-frame position of the body origin that puts ``anchor`` at ``centre``."""
        u0, v0 = self.centre
        scale = self.distance / self.focal
        target = np.array([(u0 - self.width / 2) * scale, (v0 - self.height / 2) * scale, self.distance])
        return target - self.rotation @ self.anchor

    def moved_back(self, factor: float) -> Camera:
        """The same view from ``factor`` times farther, drifting to the middle (an operator reframing)."""
        u0, v0 = self.centre
        return replace(
            self,
            distance=self.distance * factor,
            centre=(self.width / 2 + (u0 - self.width / 2) / factor, v0),
        )

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        return points @ self.rotation.T + self.offset

    def to_image(self, cam: np.ndarray) -> np.ndarray:
        """Normalised image coordinates (..., 2): x = u/width, y = v/height."""
        depth = np.maximum(cam[..., 2], 0.05)
        u = self.focal * cam[..., 0] / depth + self.width / 2
        v = self.focal * cam[..., 1] / depth + self.height / 2
        return np.stack([u / self.width, v / self.height], axis=-1)

    def body_z(self, cam: np.ndarray, hip_depth: np.ndarray) -> np.ndarray:
        """Depth relative to the hip centre, in x's scale at the hips (MediaPipe Pose's z)."""
        scale = self.focal / (self.width * hip_depth)
        return self.z_gain * (cam[..., 2] - hip_depth[:, None]) * scale[:, None]

    def hand_z(self, cam: np.ndarray) -> np.ndarray:
        """Depth relative to the wrist, in x's scale at the wrist (MediaPipe Hands' z): (T, 2, 21)."""
        wrist = cam[..., :1, 2]
        return self.hand_z_gain * (cam[..., 2] - wrist) * self.focal / (self.width * wrist)


def sample_camera(rng: np.random.Generator, subject: Subject) -> Camera:
    """A webcam or robot camera 0.6-3.5 m away with the subject's shoulders and head inside the frame."""
    width, height = (640, 480) if rng.random() < 0.65 else (1280, 720)
    focal = width / 2 / np.tan(np.radians(rng.uniform(55.0, 75.0)) / 2)
    distance = float(np.exp(rng.uniform(np.log(0.6), np.log(3.5))))
    yaw, pitch = np.radians(rng.uniform(-25.0, 25.0)), np.radians(rng.uniform(-8.0, 8.0))
    rotation = axis_rotation(0, pitch) @ axis_rotation(1, yaw)
    px_per_m = focal / distance
    v_low = max(0.22 * height, 0.34 * subject.head * px_per_m + 0.03 * height)
    v0 = rng.uniform(v_low, max(v_low, 0.6 * height))
    u_span = max(0.0, width / 2 - 0.55 * px_per_m)
    u0 = width / 2 + rng.uniform(-u_span, u_span)
    return Camera(
        width, height, float(focal), rotation, distance, (u0, v0), np.array([0.0, -subject.torso, 0.0]),
        z_gain=float(rng.uniform(3.0, 5.0)), hand_z_gain=float(rng.uniform(0.6, 1.0)),
    )  # fmt: skip


@dataclass(frozen=True)
class EstimatorStyle:
    """How strongly the simulated pose estimator perturbs one sequence (lighting, blur, clutter)."""

    body_jitter: float  # std of body jitter, fraction of the shoulder width
    hand_jitter: float  # std of hand jitter, fraction of the hand size (wrist to middle knuckle)
    spike_rate: float  # chance per joint and frame of a jitter spike
    drop_rate: float  # base chance per frame that a tracked hand is lost
    recover_rate: float  # chance per frame that a lost hand is found again
    hand_confidence: float  # typical hand score


def sample_style(rng: np.random.Generator) -> EstimatorStyle:
    """A random estimator quality, tuned on MediaPipe Holistic's sign recordings (docs/synthetic_data.md)."""
    return EstimatorStyle(
        body_jitter=float(rng.uniform(0.001, 0.004)), hand_jitter=float(rng.uniform(0.006, 0.018)),
        spike_rate=float(rng.uniform(0.001, 0.006)), drop_rate=float(rng.uniform(0.005, 0.03)),
        recover_rate=float(rng.uniform(0.2, 0.5)), hand_confidence=float(rng.uniform(0.75, 0.97)),
    )  # fmt: skip


_BASE_VISIBILITY = np.array(
    [0.995] * 11 + [0.99, 0.99, 0.96, 0.96, 0.92, 0.92] + [0.85] * 6 + [0.97, 0.97] + [0.94] * 8
)
_HAND_POINTS_OF_SLOT = [
    [MP33.index(f"{side}_{part}") for part in ("wrist", "pinky", "index", "thumb")]
    for side in ("left", "right")
]
_ARM_JOINTS = [
    MP33.index(f"{s}_{p}") for s in ("left", "right") for p in ("elbow", "wrist", "pinky", "index", "thumb")
]


def _inside_frame(xy: np.ndarray) -> np.ndarray:
    """About 1 well inside the image, 0.7 on its border, near 0 a few percent outside."""
    margin = np.minimum(np.minimum(xy[..., 0], 1 - xy[..., 0]), np.minimum(xy[..., 1], 1 - xy[..., 1]))
    return 1.0 / (1.0 + np.exp(np.minimum(-(margin + 0.01) / 0.012, 700.0)))  # far out: 0, no overflow


@dataclass(frozen=True)
class _View:
    """Clean (noise-free) projection of one sequence, in pixels and camera-frame metres."""

    body_px: np.ndarray  # (T, 33, 2)
    body_depth: np.ndarray  # (T, 33)
    hands_px: np.ndarray  # (T, 2, 21, 2)
    hands_depth: np.ndarray  # (T, 2, 21)
    palm_px: np.ndarray  # (T, 2, 2)
    palm_depth: np.ndarray  # (T, 2)
    hand_px: np.ndarray  # (T, 2) hand size: wrist to middle knuckle in pixels, seen face-on
    shoulder_px: float  # median shoulder width in pixels


def _view(body_cam: np.ndarray, hands_cam: np.ndarray, camera: Camera) -> _View:
    px = np.array([camera.width, camera.height], dtype=float)
    body_px, hands_px = camera.to_image(body_cam) * px, camera.to_image(hands_cam) * px
    shoulders = np.linalg.norm(body_px[:, 11] - body_px[:, 12], axis=-1)
    # apparent hand size from the 3D palm length, so a foreshortened hand does not count as a far one
    palm_m = np.linalg.norm(hands_cam[:, :, 9] - hands_cam[:, :, 0], axis=-1)
    hand_px = palm_m * camera.focal / np.maximum(hands_cam[:, :, 0, 2], 0.05)
    return _View(
        body_px, body_cam[..., 2], hands_px, hands_cam[..., 2], hands_px[:, :, PALM].mean(2),
        hands_cam[:, :, PALM, 2].mean(2), hand_px, float(np.median(shoulders)),
    )  # fmt: skip


def _behind_hand(view: _View, points_px: np.ndarray, depth: np.ndarray, slot: int) -> np.ndarray:
    """Points (T, N) hidden behind hand ``slot``'s palm: close to it in the image and farther away."""
    near = (
        np.linalg.norm(points_px - view.palm_px[:, slot, None], axis=-1) < 0.8 * view.hand_px[:, slot, None]
    )
    return near & (depth > view.palm_depth[:, slot, None] + 0.03)


def _behind_torso(view: _View) -> np.ndarray:
    """Arm joints (T, 33) inside the torso's image box and behind the torso (a yawed far arm)."""
    corners = view.body_px[:, [11, 12, 23, 24]]
    low, high = corners.min(1)[:, None], corners.max(1)[:, None]
    inside = np.all((view.body_px > low) & (view.body_px < high), axis=-1)
    behind = view.body_depth > view.body_depth[:, [11, 12, 23, 24]].mean(1, keepdims=True) + 0.06
    mask = np.zeros(inside.shape, bool)
    mask[:, _ARM_JOINTS] = True
    return inside & behind & mask


def _body_visibility(view: _View, xy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """MediaPipe-like visibility (T, 33): high in view, low outside the frame and when occluded."""
    occluded = _behind_torso(view)
    for slot in (0, 1):
        hidden = _behind_hand(view, view.body_px, view.body_depth, slot)
        hidden[:, _HAND_POINTS_OF_SLOT[slot]] = False
        occluded |= hidden
    vis = (
        _BASE_VISIBILITY * _inside_frame(xy) * np.where(occluded, rng.uniform(0.15, 0.5, occluded.shape), 1.0)
    )
    return np.clip(vis + rng.normal(0.0, 0.015, vis.shape), 0.0, 1.0)


def _hand_scores(view: _View, style: EstimatorStyle, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-landmark hand scores (T, 2, 21): the hand's confidence, lower for hidden landmarks."""
    confidence = np.stack([style.hand_confidence + smooth_wiggle(rng, t, 0.04, 1.0) for _ in range(2)], -1)
    scores = np.clip(confidence, 0.3, 1.0)[..., None] * np.ones(view.hands_depth.shape)
    for slot in (0, 1):
        own = _behind_hand(view, view.hands_px[:, slot], view.hands_depth[:, slot] - 0.02, slot)
        other = _behind_hand(view, view.hands_px[:, slot], view.hands_depth[:, slot], 1 - slot)
        scores[:, slot] *= np.where(own, 0.6, 1.0) * np.where(other, 0.6, 1.0)
    return scores


def _per_frame(p: np.ndarray, fps: float) -> np.ndarray:
    """A per-frame probability defined at 30 fps, converted to ``fps``."""
    return 1.0 - (1.0 - np.clip(p, 0.0, 1.0)) ** (30.0 / fps)


def hand_loss_rates(
    hand_px: np.ndarray, speed: np.ndarray, low: np.ndarray, style: EstimatorStyle, fps: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame chances that a tracked hand is lost and that a lost one is found again.

    ``hand_px`` is the hand size (wrist to middle knuckle) in pixels, ``speed`` the wrist speed in
    hand sizes per second, ``low`` whether the hand hangs below the hips. Losing gets likelier for
    small (far) hands, fast hands (blur) and hanging hands; small hands are also found again later.
    """
    small = np.clip((30.0 - hand_px) / 18.0, 0.0, 1.0)
    fast = np.clip((speed - 3.0) / 9.0, 0.0, 1.0)
    lose = _per_frame(style.drop_rate + 0.1 * fast + 0.1 * small + 0.02 * low, fps)
    find = _per_frame(style.recover_rate * (1.0 - 0.6 * small), fps)
    return lose, find


def _hand_tracking(
    view: _View, hand_xy: np.ndarray, style: EstimatorStyle, fps: float, rng: np.random.Generator
) -> np.ndarray:
    """Which hands the estimator reports (T, 2): losses come in runs (see :func:`hand_loss_rates`),
    and a hand with less than 60% of its landmarks inside the image is never reported."""
    wrist = view.hands_px[:, :, 0]
    speed = (
        np.linalg.norm(np.diff(wrist, axis=0, prepend=wrist[:1]), axis=-1)
        * fps
        / np.maximum(view.hand_px, 1.0)
    )
    low = view.hands_px[:, :, 0, 1] > view.body_px[:, [23, 24], 1].mean(1)[:, None]
    lose, find = hand_loss_rates(view.hand_px, speed, low, style, fps)
    inside = np.all((hand_xy > 0.0) & (hand_xy < 1.0), axis=-1).mean(-1)
    visible = inside >= 0.6  # MediaPipe still reports a hand with a few landmarks past the border
    draws = rng.random(lose.shape)
    tracked = np.zeros(lose.shape, bool)
    state = np.ones(2, bool)
    for i in range(len(lose)):
        state = np.where(state, draws[i] >= lose[i], draws[i] < find[i])
        tracked[i] = state & visible[i]
    return tracked


def _ar1(rng: np.random.Generator, shape: tuple[int, ...], rho: float) -> np.ndarray:
    """Unit-variance noise correlated along axis 0 (estimators jitter smoothly, not white)."""
    white = rng.normal(size=shape)
    out = np.empty(shape)
    out[0] = white[0]
    for i in range(1, shape[0]):
        out[i] = rho * out[i - 1] + np.sqrt(1 - rho**2) * white[i]
    return out


def _spikes(rng: np.random.Generator, shape: tuple[int, ...], rate: float) -> np.ndarray:
    """Rare large offsets (units of 1), lasting one or two frames: (shape..., 3)."""
    hit = rng.random(shape) < rate
    hit |= np.roll(hit, 1, axis=0) & (rng.random(shape) < 0.5)
    return hit[..., None] * rng.normal(0.0, 1.0, (*shape, 3))


def _pixel_noise(noise_px: np.ndarray, camera: Camera, z_factor: float) -> np.ndarray:
    """Pixel-unit noise (..., 3) to normalised x, y and to z in x's scale."""
    return noise_px * np.array([1.0 / camera.width, 1.0 / camera.height, z_factor / camera.width])


def _body_noise(view: _View, style: EstimatorStyle, camera: Camera, rng: np.random.Generator) -> np.ndarray:
    """Jitter (T, 33, 3) in output units: correlated noise plus spikes of 5 to 12 sigma."""
    sigma = style.body_jitter * view.shoulder_px
    shape = view.body_depth.shape
    px = sigma * (
        _ar1(rng, (*shape, 3), 0.8) + rng.uniform(5.0, 12.0) * _spikes(rng, shape, style.spike_rate)
    )
    return _pixel_noise(px, camera, 3.0 * camera.z_gain)


def _hand_noise(view: _View, style: EstimatorStyle, camera: Camera, rng: np.random.Generator) -> np.ndarray:
    """Jitter (T, 2, 21, 3): per landmark, of the whole hand, a fixed offset from the Pose wrist, spikes."""
    sigma = (style.hand_jitter * np.maximum(view.hand_px, 4.0))[..., None, None]
    n, shape = len(view.hand_px), view.hands_depth.shape
    joint = _ar1(rng, (*shape, 3), 0.5) + rng.uniform(4.0, 8.0) * _spikes(rng, shape, 1.5 * style.spike_rate)
    whole = 0.7 * _ar1(rng, (n, 2, 1, 3), 0.8) + 8.0 * _spikes(rng, (n, 2, 1), 2 * style.spike_rate)
    bias = rng.normal(0.0, 0.15, (1, 2, 1, 3)) * view.hand_px[..., None, None] / sigma.clip(1e-6)
    return _pixel_noise(sigma * (joint + whole + bias), camera, 1.5 * camera.hand_z_gain)


def observe(
    body: np.ndarray, hands: np.ndarray, camera: Camera, style: EstimatorStyle, fps: float,
    rng: np.random.Generator,
) -> SkeletonSequence:  # fmt: skip
    """Film the 3D skeleton and degrade it the way a pose estimator does; returns the contract sequence."""
    n = len(body)
    t = np.arange(n) / fps
    body_cam, hands_cam = camera.to_camera(body), camera.to_camera(hands)
    view = _view(body_cam, hands_cam, camera)
    body_xy, hands_xy = camera.to_image(body_cam), camera.to_image(hands_cam)
    hip_depth = body_cam[:, [23, 24], 2].mean(1)
    body_out = np.concatenate([body_xy, camera.body_z(body_cam, hip_depth)[..., None]], -1)
    hands_out = np.concatenate([hands_xy, camera.hand_z(hands_cam)[..., None]], -1)
    vis, scores = _body_visibility(view, body_xy, rng), _hand_scores(view, style, t, rng)
    present = _hand_tracking(view, hands_xy, style, fps, rng)
    body_out += _body_noise(view, style, camera, rng)
    hands_out += _hand_noise(view, style, camera, rng)
    hands_out[..., 2] -= hands_out[..., :1, 2]  # hand depth stays relative to its (noisy) wrist
    # a camera close and pitched down puts the feet many image heights below the frame; the pose
    # estimator guesses them near it (and the contract refuses coordinates beyond its limit)
    limit = COORDINATE_LIMITS["image"]
    np.clip(body_out, -limit, limit, out=body_out)
    np.clip(hands_out, -limit, limit, out=hands_out)
    body_arr = np.concatenate([body_out, vis[..., None]], -1)
    hands_arr = np.concatenate([hands_out, scores[..., None]], -1) * present[..., None, None]
    return SkeletonSequence(t, body_arr, hands_arr, present, image_size=(camera.width, camera.height))
