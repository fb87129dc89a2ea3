"""Errors of a tracked clip against a rendered clip's ground truth (same head topology).

Alignment: none. The tracker is given the very head asset the clip was rendered with, so the
head's size is known and vertex errors are compared in head space as they are (expression
only, independent of pose); rotations are compared in the clip's one camera. Untracked frames
(confidence 0 holds a neighbour's values) are excluded from every error and counted; truth
frames the results do not cover are counted too. Nothing is averaged away silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..formats.camera import project_points
from ..formats.errors import BadInput
from ..formats.head_file import HeadAsset
from ..landmarks.nme import nme
from .metrics import (
    landmark_errors_px,
    matched_frames,
    rotation_errors_deg,
    vertex_errors_mm,
)
from .real_metrics import landmark_jitter


@dataclass
class TruthErrors:
    """Summary figures (as_dict) and the per-frame / per-vertex arrays plots need."""

    vertex_mm_mean: float  # face region, head space
    vertex_mm_p95: float
    rotation_deg_mean: float  # head rotation in the camera
    rotation_deg_p95: float
    landmark_px_mean: float  # fitted landmarks vs the truth's projected landmarks
    landmark_px_p95: float
    landmark_nme: float  # landmark error over the truth's inter-ocular distance
    jitter_px: float  # mean second difference of the fitted landmarks (runs of tracked frames)
    truth_jitter_px: float  # the same for the true landmarks (the real motion's share)
    frames: int  # frames scored (tracked and in the truth)
    frames_untracked: int  # tracked frames with confidence 0, excluded
    frames_missing: int  # truth frames absent from the results
    fraction_tracked: float  # frames scored / truth frames
    frame_indices: np.ndarray = field(repr=False)  # (frames,) scored source frames
    vertex_mm_per_frame: np.ndarray = field(repr=False)  # (frames,) mean over the face region
    vertex_mm_per_vertex: np.ndarray = field(repr=False)  # (V,) mean over frames, NaN off-region

    def as_dict(self) -> dict[str, float | int | str]:
        arrays = ("frame_indices", "vertex_mm_per_frame", "vertex_mm_per_vertex")
        summary = {k: v for k, v in self.__dict__.items() if k not in arrays}
        return {**summary, "scale_alignment": "none (the tracker knows the head's size)"}


def _or_nan(value: float | None) -> float:
    return float("nan") if value is None else value


def truth_errors(tracking: dict[str, np.ndarray], truth: dict[str, np.ndarray],
                 head: HeadAsset) -> TruthErrors:
    """Score tracking.npz arrays against truth.npz arrays of the clip rendered with `head`.

    Raises BadInput when the two cannot be compared: another topology, or tracked frames the
    truth lacks; and when no frame is tracked.
    """
    if tracking["vertices"].shape[1:] != truth["vertices"].shape[1:]:
        raise BadInput(f"results have {tracking['vertices'].shape[1]} vertices per frame, the "
                       f"ground truth {truth['vertices'].shape[1]}: another head topology")
    try:
        rows = matched_frames(tracking["frames"], truth["frames"])
    except ValueError as exc:
        raise BadInput(f"results and ground truth do not match: {exc}") from exc
    tracked = tracking["confidence"] > 0
    if not tracked.any():
        raise BadInput("no frame of the results is tracked (all confidences 0): nothing to score")
    truth_rows = rows[tracked]
    vertex = vertex_errors_mm(tracking["vertices"][tracked], truth["vertices"][truth_rows],
                              head.face_region)
    rotation = rotation_errors_deg(tracking["head_pose"][tracked, :3, :3].astype(np.float64),
                                   truth["head_pose"][truth_rows, :3, :3].astype(np.float64))
    fitted = project_points(tracking["vertices"][:, head.landmark_vertex].astype(np.float64),
                            tracking["head_pose"].astype(np.float64),
                            tracking["intrinsics"].astype(np.float64))
    true_points = truth["landmarks_2d"][rows].astype(np.float64)
    landmark = landmark_errors_px(fitted[tracked], true_points[tracked], head.landmark_mask)
    jitter = landmark_jitter(fitted, true_points, tracked, tracking["frames"], head.landmark_mask)
    per_vertex = np.full(len(head.face_region), np.nan)
    per_vertex[head.face_region] = vertex.mean(0)
    return TruthErrors(
        vertex_mm_mean=float(vertex.mean()),
        vertex_mm_p95=float(np.percentile(vertex, 95)),
        rotation_deg_mean=float(rotation.mean()),
        rotation_deg_p95=float(np.percentile(rotation, 95)),
        landmark_px_mean=float(landmark.mean()),
        landmark_px_p95=float(np.percentile(landmark, 95)),
        landmark_nme=float(nme(fitted[tracked], true_points[tracked], head.landmark_mask).mean()),
        jitter_px=_or_nan(jitter["tracked_px"]),
        truth_jitter_px=_or_nan(jitter["reference_px"]),
        frames=int(tracked.sum()),
        frames_untracked=int((~tracked).sum()),
        frames_missing=len(truth["frames"]) - len(rows),
        fraction_tracked=float(tracked.sum() / len(truth["frames"])),
        frame_indices=tracking["frames"][tracked],
        vertex_mm_per_frame=vertex.mean(1),
        vertex_mm_per_vertex=per_vertex,
    )
