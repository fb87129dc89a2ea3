"""Which frames of a clip the identity is fitted to: views that cover the head.

A face seen only from the front leaves its depth (nose length, brow and chin projection) to the
prior; the same face turned to both sides pins it. So every sampled frame's head angles are
estimated from its MediaPipe points (a rigid PnP against the default head's embedded points),
and frames are chosen by farthest-point sampling over (yaw, pitch), starting at the most frontal
one, so a clip that turns contributes its turns and a long static stretch contributes one view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..formats.camera import centred_intrinsics

# Below this yaw span (degrees) the clip says little about the depth of the face.
MIN_YAW_SPAN_DEG = 20.0
MIN_FRAMES = 8


@dataclass
class FrameCoverage:
    """chosen (C,) positions into the frames given; yaw_deg, pitch_deg (F,) each frame's
    estimated angles (NaN where the pose could not be estimated); warnings in words."""

    chosen: np.ndarray
    yaw_deg: np.ndarray
    pitch_deg: np.ndarray
    warnings: list[str]

    @property
    def yaw_span_deg(self) -> float:
        yaws = self.yaw_deg[self.chosen]
        return float(np.nanmax(yaws) - np.nanmin(yaws)) if np.isfinite(yaws).any() else 0.0


def head_angles(points: np.ndarray, template: np.ndarray, mask: np.ndarray, width: int,
                height: int) -> tuple[float, float]:
    """(yaw, pitch) degrees of the head whose points (P, 2) pixels are the template's (P, 3,
    head space) seen by a camera of focal max(width, height); NaN when PnP fails. Yaw is a turn
    about the head's up axis, pitch a nod; both 0 facing the camera."""
    import cv2

    k = centred_intrinsics(float(max(width, height)), width, height).astype(np.float64)
    ok, rvec, _ = cv2.solvePnP(template[mask].astype(np.float64), points[mask].astype(np.float64),
                               k, None, flags=cv2.SOLVEPNP_EPNP)
    if not ok:
        return math.nan, math.nan
    rotation, _ = cv2.Rodrigues(rvec)
    # Where the face looks (head space -Y) in camera axes: (0, 0, -1) when facing the camera.
    seen = rotation @ np.array([0.0, -1.0, 0.0])
    yaw = math.degrees(math.atan2(seen[0], -seen[2]))
    pitch = math.degrees(math.atan2(-seen[1], math.hypot(seen[0], seen[2])))
    return yaw, pitch


def choose_frames(yaw_deg: np.ndarray, pitch_deg: np.ndarray, count: int) -> np.ndarray:
    """(min(count, F),) positions of frames spread over (yaw, pitch) (F,) by farthest-point
    sampling from the most frontal; frames without angles are chosen last."""
    angles = np.stack([yaw_deg, pitch_deg], 1)
    known = np.isfinite(angles).all(1)
    order = np.flatnonzero(known)
    if len(order) == 0:
        return np.arange(min(count, len(yaw_deg)))
    first = order[np.argmin(np.abs(angles[order]).sum(1))]
    chosen = [first]
    distance = np.linalg.norm(angles[order] - angles[first], axis=1)
    while len(chosen) < min(count, len(order)):
        nxt = int(np.argmax(distance))
        chosen.append(order[nxt])
        distance = np.minimum(distance, np.linalg.norm(angles[order] - angles[order[nxt]], axis=1))
    unknown = np.flatnonzero(~known)[: max(0, count - len(chosen))]
    return np.sort(np.concatenate([np.array(chosen, np.int64), unknown]))


def frame_coverage(points: np.ndarray, template: np.ndarray, mask: np.ndarray, width: int,
                   height: int, count: int) -> FrameCoverage:
    """Angles of every frame's points (F, P, 2), the frames chosen, and what the views lack."""
    angles = np.array([head_angles(p, template, mask, width, height) for p in points]).reshape(-1, 2)
    chosen = choose_frames(angles[:, 0], angles[:, 1], count)
    coverage = FrameCoverage(chosen, angles[:, 0], angles[:, 1], [])
    if len(points) < MIN_FRAMES:
        coverage.warnings.append(
            f"only {len(points)} frame(s) show a face: the identity rests on few views and "
            f"leans on the default head's proportions; a few seconds of the actor turning the "
            f"head gives at least {MIN_FRAMES}")
    if coverage.yaw_span_deg < MIN_YAW_SPAN_DEG:
        coverage.warnings.append(
            f"the head turns only {coverage.yaw_span_deg:.0f} degrees over the frames used (under "
            f"{MIN_YAW_SPAN_DEG:.0f}): the depth of the face (nose length, brow and chin) comes "
            "from the default head more than from the actor; footage with the head turned about "
            "30 degrees to each side constrains it")
    return coverage
