"""Drawn face-like frames: a speaker's face shape with an emotion-dependent, evolving expression.

Shapes are rendered with soft (one-pixel) edges from signed distances on a [-1, 1] face coordinate
grid, all frames at once, so a clip costs a handful of numpy array ops.
"""

from __future__ import annotations

import numpy as np

from data_prep.generated.design import VIDEO_GROUP, VIDEO_SIDE

# Per video group (see design.py): mouth curvature (+ = corners up), mouth opening, brow tilt
# (+ = inner ends raised, - = lowered), eye opening. The rest face is (0, 0, 0, 0.45).
_EXPR = np.array([
    [0.7, 0.05, 0.0, 0.45],   # neutral / happy: relaxed smile
    [-0.8, 0.10, 1.0, 0.55],  # sad / fearful: mouth down, worried brows
    [0.0, 0.85, -0.9, 1.0],   # angry / surprised: open mouth, lowered brows, wide eyes
])
_REST = np.array([0.0, 0.0, 0.0, 0.45])
# Within-pair nudge direction: a little more smile and eye opening for side +1.
_NUDGE = np.array([0.35, 0.0, 0.0, 0.12])


def sample_speaker(rng: np.random.Generator) -> dict[str, np.ndarray | float]:
    """Draws a speaker's face: oval size, feature placement, skin and brow colours."""
    tone = rng.uniform(0.35, 0.95)
    return {
        "rx": rng.uniform(0.55, 0.72), "ry": rng.uniform(0.75, 0.92),
        "eye_dx": rng.uniform(0.24, 0.34), "eye_y": rng.uniform(-0.28, -0.16),
        "mouth_y": rng.uniform(0.34, 0.48), "mouth_w": rng.uniform(0.2, 0.3),
        "skin": np.array([tone, tone * 0.8, tone * 0.65]) + rng.uniform(-0.05, 0.05, 3),
        "brow": rng.uniform(0.05, 0.3, 3),
    }


def _soft(dist: np.ndarray, pix: np.ndarray) -> np.ndarray:
    """Coverage from a signed distance (positive inside) with a one-pixel ramp."""
    return np.clip(0.5 + dist / pix, 0.0, 1.0)


def _segment_dist(x, y, x0, y0, x1, y1):
    """Distance from points (x, y) to the segments (x0, y0)-(x1, y1), broadcast per frame."""
    dx, dy = x1 - x0, y1 - y0
    s = np.clip(((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
    return np.hypot(x - x0 - s * dx, y - y0 - s * dy)


def _paint(img: np.ndarray, alpha: np.ndarray, color: np.ndarray) -> np.ndarray:
    return img + alpha[..., None] * (np.asarray(color, np.float32) - img)


def render(rng: np.random.Generator, label: int, speaker: dict, num_frames: int, size: int,
           within: float) -> np.ndarray:
    """Returns uint8 frames [num_frames, size, size, 3] of class ``label``.

    Args:
      rng: the example's generator (consumed in a fixed order).
      label: class index into ``design.CLASSES``.
      speaker: from :func:`sample_speaker`.
      num_frames: frames in the clip.
      size: frame height and width.
      within: strength of the weak within-pair cue.
    """
    tt = np.arange(num_frames)[:, None, None]  # [T, 1, 1]
    target = _EXPR[VIDEO_GROUP[label]] + VIDEO_SIDE[label] * within * _NUDGE
    target = target + rng.normal(0, 0.12, 4)
    # Expression onset: starts part-way expressed and ramps to full within the clip.
    start = rng.uniform(0.3, 0.6)
    onset, ramp = rng.uniform(0, num_frames / 2), rng.uniform(1.0, 3.0)
    inten = start + (1 - start) * np.clip((tt - onset) / ramp, 0.0, 1.0)
    # float32 halves the cost of every per-pixel op below; 8-bit output needs no more precision.
    curve, mopen, tilt, eye = [(_REST[i] + inten * (target[i] - _REST[i])).astype(np.float32)
                               for i in range(4)]

    # Pose jitter: per-clip shift/scale/rotation plus a small per-frame wobble.
    shift = rng.uniform(-0.12, 0.12, 2) + rng.normal(0, 0.02, (num_frames, 2))
    scale = rng.uniform(0.88, 1.1) * (1 + rng.normal(0, 0.01, num_frames))
    angle = rng.uniform(-0.1, 0.1) + rng.normal(0, 0.015, num_frames)
    shift, scale, angle = shift[:, :, None, None], scale[:, None, None], angle[:, None, None]
    v, u = np.meshgrid((np.arange(size) + 0.5) / size * 2 - 1,
                       (np.arange(size) + 0.5) / size * 2 - 1, indexing="ij")
    uu, vv = (u - shift[:, 0]) / scale, (v - shift[:, 1]) / scale
    x = (np.cos(angle) * uu + np.sin(angle) * vv).astype(np.float32)  # [T, H, W] face coords
    y = (-np.sin(angle) * uu + np.cos(angle) * vv).astype(np.float32)
    pix = (2.0 / size / scale).astype(np.float32)

    sp = speaker
    background = rng.uniform(0.1, 0.9, 3).astype(np.float32)
    img = np.broadcast_to(background, (num_frames, size, size, 3)).copy()
    face = (1 - np.hypot(x / sp["rx"], y / sp["ry"])) * sp["rx"]
    img = _paint(img, _soft(face, pix), sp["skin"])
    # Both eyes (and both brows) share a colour, so each pair is one paint with max coverage.
    eyes, brows = np.zeros_like(x), np.zeros_like(x)
    ery = 0.02 + 0.11 * np.clip(eye, 0.0, 1.3)
    by = sp["eye_y"] - 0.17
    for side in (-1.0, 1.0):
        eye_d = (1 - np.hypot((x - side * sp["eye_dx"]) / 0.12, (y - sp["eye_y"]) / ery)) * ery
        eyes = np.maximum(eyes, _soft(eye_d, pix))
        brow_d = _segment_dist(x, y, side * 0.08, by - 0.08 * tilt, side * 0.42, by + 0.03 * tilt)
        brows = np.maximum(brows, _soft(0.035 - brow_d, pix))
    img = _paint(img, eyes, np.array([0.08, 0.06, 0.05]))
    img = _paint(img, brows, sp["brow"])
    mw = sp["mouth_w"]
    centre = sp["mouth_y"] + 0.13 * curve * (1 - np.clip(x / mw, -1, 1) ** 2)
    half = 0.025 + 0.1 * np.clip(mopen, 0.0, 1.2)
    mouth_d = np.minimum(half - np.abs(y - centre), mw - np.abs(x))
    img = _paint(img, _soft(mouth_d, pix), np.array([0.45, 0.1, 0.12]))

    # Lighting: a brightness drift over the clip and a directional gradient, then sensor noise.
    gain = np.linspace(rng.uniform(0.75, 1.15), rng.uniform(0.75, 1.15), num_frames)
    light_dir = rng.uniform(0, 2 * np.pi)
    grad = 1 + rng.uniform(0, 0.3) * (np.cos(light_dir) * u + np.sin(light_dir) * v)
    img = img * (gain[:, None, None] * grad).astype(np.float32)[..., None]
    img = img + rng.uniform(0.01, 0.035) * rng.standard_normal(img.shape, dtype=np.float32)
    return np.round(np.clip(img, 0.0, 1.0) * 255).astype(np.uint8)
