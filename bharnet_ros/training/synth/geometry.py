"""Small geometry helpers and keyframe interpolation shared by the generator's modules.

The body frame is metres with the origin at the hip centre, x towards the subject's left, y down and z
backwards (away from a camera the subject faces), the same handedness as the camera frame (x right,
y down, z into the scene). Keyframes are interpolated with a monotone cubic, so a repeated keyframe is
a smooth stop without overshoot.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` scaled to length 1 along its last axis (a zero vector stays zero)."""
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def axis_rotation(axis: int, angle: np.ndarray | float) -> np.ndarray:
    """Rotation matrices (..., 3, 3) by ``angle`` radians about coordinate axis 0, 1 or 2."""
    angle = np.asarray(angle, dtype=float)
    c, s = np.cos(angle), np.sin(angle)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    out = np.zeros((*angle.shape, 3, 3))
    out[..., axis, axis] = 1.0
    out[..., i, i], out[..., i, j], out[..., j, i], out[..., j, j] = c, -s, s, c
    return out


def smoothstep(s: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, and a cubic with zero slope at both ends in between (fades)."""
    s = np.clip(s, 0.0, 1.0)
    return s * s * (3.0 - 2.0 * s)


def smooth_wiggle(rng: np.random.Generator, t: np.ndarray, amplitude: float, max_hz: float) -> np.ndarray:
    """Slow random drift: three low-frequency sinusoids scaled to a standard deviation of ``amplitude``."""
    freqs = rng.uniform(0.05, max_hz, 3)
    phases = rng.uniform(0.0, 2.0 * np.pi, 3)
    weights = rng.normal(size=3)
    wave = (weights[:, None] * np.sin(2.0 * np.pi * freqs[:, None] * t + phases[:, None])).sum(0)
    return amplitude * wave / np.sqrt(max((weights**2).sum() / 2.0, 1e-9))


def _pchip_slopes(times: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Fritsch-Carlson slopes per dimension: zero at the ends and wherever the motion turns or stops."""
    h = np.maximum(np.diff(times), 1e-9)[:, None]
    delta = np.diff(values, axis=0) / h
    slopes = np.zeros_like(values)
    left, right = delta[:-1], delta[1:]
    w1, w2 = 2.0 * h[1:] + h[:-1], h[1:] + 2.0 * h[:-1]
    same_sign = left * right > 0
    safe_l = np.where(same_sign, left, 1.0)
    safe_r = np.where(same_sign, right, 1.0)
    slopes[1:-1] = np.where(same_sign, (w1 + w2) / (w1 / safe_l + w2 / safe_r), 0.0)
    return slopes


def interpolate_keys(keys: Sequence[tuple[float, np.ndarray]], t: np.ndarray) -> np.ndarray:
    """Evaluate keyframes ``(time, vector)`` (times non-decreasing) at times ``t``; ends are held."""
    times = np.array([k[0] for k in keys], dtype=float)
    values = np.stack([np.asarray(k[1], dtype=float) for k in keys])
    slopes = _pchip_slopes(times, values)
    idx = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
    h = np.maximum(times[idx + 1] - times[idx], 1e-9)
    s = np.clip((t - times[idx]) / h, 0.0, 1.0)[:, None]
    h = h[:, None]
    h00, h10 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s
    h01, h11 = -2 * s**3 + 3 * s**2, s**3 - s**2
    return h00 * values[idx] + h10 * h * slopes[idx] + h01 * values[idx + 1] + h11 * h * slopes[idx + 1]
