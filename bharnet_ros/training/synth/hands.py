"""Hands: 21 MediaPipe landmarks from per-finger flexion.

A hand is built in a right hand's local frame whose axes are (distal, radial, palmar) and whose unit
is the hand length (wrist to middle fingertip); :func:`hand_frame` turns that frame into body
coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bharnet_ros.training.synth.geometry import unit

# Hand shape vector: MCP flexion of index..pinky (1 = 90 degrees), PIP/DIP curl of index..pinky
# (1 = fully curled), finger spread, and the thumb tip's target position in the local frame.
MCP, CURL, SPREAD, THUMB = slice(0, 4), slice(4, 8), 8, slice(9, 12)
PALM = [0, 5, 9, 13, 17]  # the wrist and the four finger knuckles: where the palm is

_FINGER_MCP = np.array([[0.50, 0.16, 0.01], [0.53, 0.04, -0.01], [0.50, -0.085, 0.0], [0.45, -0.205, 0.02]])
_FINGER_BONES = np.array([[0.24, 0.14, 0.12], [0.24, 0.16, 0.13], [0.22, 0.16, 0.12], [0.21, 0.12, 0.11]])
_FINGER_SPLAY = np.radians([4.0, 0.0, -4.0, -9.0])  # resting direction of each finger in the palm plane
_FINGER_SPREAD = np.radians([10.0, -4.0, -9.0, -16.0])  # extra splay at spread = 1
_THUMB_CMC = np.array([0.14, 0.18, 0.05])
_THUMB_BONES = np.array([0.22, 0.18, 0.145])  # CMC-MCP, MCP-IP, IP-tip
_THUMB_BEND = np.array([0.0, 1.0, 0.35])  # the thumb's knuckles bulge radially and a little palmar
# MediaPipe Pose's own coarse hand points (pinky, index, thumb), in the hand frame. Pose gets the hand's
# direction about right but not its roll (on the real sign recordings its thumb point is on the hand's
# thumb side only about half the time), so they are placed in a frame with the true finger direction
# and a roll fixed to the body.
_INWARDS = np.array([1.0, 0.0, 0.0])  # body frame: from the right side towards the midline
_BACKWARDS = np.array([0.0, 0.0, 1.0])  # away from a camera the subject faces
_COARSE_HAND = np.array([[0.56, -0.17, 0.03], [0.63, 0.15, 0.02], [0.30, 0.28, 0.07]])


def _thumb_target(direction: Sequence[float], reach: float) -> np.ndarray:
    return _THUMB_CMC + reach * _THUMB_BONES.sum() * unit(np.asarray(direction, dtype=float))


def _finger_chains(shape: np.ndarray) -> np.ndarray:
    """MCP, PIP, DIP and tip of the four fingers, (T, 4, 4, 3), from MCP flexion, curl and spread."""
    splay = _FINGER_SPLAY + shape[:, SPREAD, None] * _FINGER_SPREAD  # (T, 4)
    base = np.stack([np.cos(splay), np.sin(splay), np.zeros_like(splay)], axis=-1)
    palmar = np.array([0.0, 0.0, 1.0])
    mcp, curl = shape[:, MCP], shape[:, CURL]
    bend = np.stack([mcp * np.radians(90), curl * np.radians(100), curl * np.radians(65)], axis=-1)
    total = np.cumsum(bend, axis=-1)[..., None]  # (T, 4, 3, 1)
    directions = np.cos(total) * base[:, :, None, :] + np.sin(total) * palmar
    steps = _FINGER_BONES[None, :, :, None] * directions
    joints = _FINGER_MCP[None, :, None, :] + np.cumsum(steps, axis=2)
    start = np.broadcast_to(_FINGER_MCP, (len(shape), 4, 3))[:, :, None, :]
    return np.concatenate([start, joints], axis=2)


_ARC_ANGLES = np.linspace(1e-4, 2.0 * np.pi - 1e-3, 2048)
_ARC_RATIOS = np.sin(_ARC_ANGLES / 2) / (_ARC_ANGLES / 2)  # chord / arc length, decreasing


def bend_chain(start: np.ndarray, end: np.ndarray, bones: np.ndarray, hint: np.ndarray) -> np.ndarray:
    """Joints of a chain of ``bones`` from ``start`` whose tip lands on ``end``, laid on a circular arc.

    The arc bulges towards ``hint``; a target beyond reach is pulled in. Returns (T, len(bones), 3).
    """
    chord = end - start
    length = bones.sum()
    c = np.clip(np.linalg.norm(chord, axis=-1), 1e-6, 0.999 * length)
    e = chord / np.maximum(np.linalg.norm(chord, axis=-1, keepdims=True), 1e-9)
    b = unit(hint - (e @ hint)[:, None] * e)
    theta = np.interp(c / length, _ARC_RATIOS[::-1], _ARC_ANGLES[::-1])
    radius = length / theta
    phi = np.cumsum(bones)[None, :] / radius[:, None]  # (T, n)
    half = (theta / 2)[:, None]
    along = c[:, None] / 2 - radius[:, None] * np.sin(half - phi)
    across = -radius[:, None] * np.cos(half) + radius[:, None] * np.cos(half - phi)
    return start[:, None, :] + along[..., None] * e[:, None, :] + across[..., None] * b[:, None, :]


def hand_local(shape: np.ndarray) -> np.ndarray:
    """21 hand landmarks (T, 21, 3) of a right hand in its local frame, from shape vectors (T, 12)."""
    n = len(shape)
    fingers = _finger_chains(shape).reshape(n, 16, 3)
    cmc = np.broadcast_to(_THUMB_CMC, (n, 3))
    thumb = bend_chain(cmc, shape[:, THUMB], _THUMB_BONES, _THUMB_BEND)
    return np.concatenate([np.zeros((n, 1, 3)), cmc[:, None], thumb, fingers], axis=1)


def _shape(mcp: Sequence[float], curl: Sequence[float], spread: float, thumb: np.ndarray) -> np.ndarray:
    return np.concatenate([mcp, curl, [spread], thumb]).astype(float)


def _ok_shape() -> np.ndarray:
    """Index bent to meet the thumb tip; the thumb target is the index tip itself, so they touch."""
    shape = _shape([0.5, 0.05, 0.1, 0.15], [0.55, 0.05, 0.1, 0.1], 0.7, np.zeros(3))
    index_tip = _finger_chains(shape[None])[0, 0, 3]
    shape[THUMB] = index_tip + np.array([0.0, 0.0, 0.01])
    return shape


_TUCKED = np.array([0.42, -0.02, 0.27])  # thumb over the curled middle finger
_FIST_MCP, _FIST_CURL = 0.9, 0.9
SHAPES: dict[str, np.ndarray] = {
    "relaxed": _shape([0.25] * 4, [0.3, 0.32, 0.35, 0.4], 0.2, _thumb_target([0.65, 0.55, 0.5], 0.9)),
    "flat": _shape([0.0] * 4, [0.03] * 4, 0.0, _thumb_target([0.75, 0.6, 0.2], 0.98)),
    "open": _shape([-0.05] * 4, [0.0] * 4, 1.0, _thumb_target([0.45, 0.85, 0.25], 0.98)),
    "fist": _shape([_FIST_MCP] * 4, [_FIST_CURL] * 4, 0.0, _TUCKED),
    "thumb": _shape([_FIST_MCP] * 4, [_FIST_CURL] * 4, 0.0, _thumb_target([0.25, 0.95, 0.1], 0.98)),
    "ok": _ok_shape(),
    "victory": _shape(
        [0.0, 0.0, _FIST_MCP, _FIST_MCP], [0.0, 0.0, _FIST_CURL, _FIST_CURL], 1.8, _TUCKED - [0.0, 0.1, 0.0]
    ),
    "ily": _shape(
        [0.0, _FIST_MCP, _FIST_MCP, 0.0],
        [0.0, _FIST_CURL, _FIST_CURL, 0.0],
        0.8,
        _thumb_target([0.35, 0.85, 0.35], 0.9),
    ),
    "point": _shape(
        [0.05, _FIST_MCP, _FIST_MCP, _FIST_MCP], [0.0, _FIST_CURL, _FIST_CURL, _FIST_CURL], 0.2, _TUCKED
    ),
    "beckon": _shape([0.1] * 4, [0.1] * 4, 0.3, _thumb_target([0.5, 0.8, 0.2], 0.95)),
}


def jitter_shape(shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A person's version of a hand shape: flexions and spread a little off, ring closure kept for OK."""
    out = shape.copy()
    out[MCP] += rng.normal(0.0, 0.05, 4)
    out[CURL] += rng.normal(0.0, 0.05, 4)
    out[SPREAD] = max(0.0, out[SPREAD] + rng.normal(0.0, 0.15))
    out[THUMB] += rng.normal(0.0, 0.015, 3)
    if np.allclose(shape, SHAPES["ok"]):
        out[THUMB] = _finger_chains(out[None])[0, 0, 3] + np.array([0.0, 0.0, 0.01])
    return out


def hand_frame(axis: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Right-hand frame (T, 3, 3), columns (distal, radial, palmar) in body coordinates.

    ``axis`` is where the fingers point (wrist to middle knuckle), ``normal`` where the palm faces; the
    normal is made orthogonal to the axis. For a right hand the thumb side is axis x normal.
    """
    distal = unit(axis)
    palmar = unit(normal - (normal * distal).sum(-1, keepdims=True) * distal)
    radial = np.cross(distal, palmar)
    return np.stack([distal, radial, palmar], axis=-1)


def coarse_hand_points(frame: np.ndarray) -> np.ndarray:
    """Pose's pinky, index and thumb points (T, 3, 3) relative to the wrist, in hand lengths: the hand's
    finger direction, but the palm turned to face inwards whatever the hand's real roll."""
    distal = frame[..., 0]
    along = (distal @ _INWARDS)[:, None] ** 2  # fingers pointing inwards: face the palm backwards instead
    rolled = hand_frame(distal, _INWARDS + 2.0 * along * _BACKWARDS)
    return np.einsum("tij,nj->tni", rolled, _COARSE_HAND)
