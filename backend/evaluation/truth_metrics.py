"""Errors of a tracked clip against a rendered clip's ground truth (same head topology)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from backend.errors import BadInput
from backend.evaluation.metrics import landmark_errors_px, matched_frames, vertex_errors_mm
from backend.render.rasterize import project


@dataclass
class TruthErrors:
    vertex_mm_mean: float  # face region, head space (expression, independent of pose)
    vertex_mm_p95: float
    landmark_px_mean: float  # fitted landmarks vs the truth's projected landmarks
    landmark_px_p95: float
    frames: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def truth_errors(tracking: dict[str, np.ndarray], truth: dict[str, np.ndarray],
                 face_region: np.ndarray, landmark_vertex: np.ndarray,
                 landmark_mask: np.ndarray) -> TruthErrors:
    """Vertex error (mm, face region) and landmark reprojection error (px), over all frames.

    tracking: tracking.npz arrays; truth: truth.npz arrays of the rendered clip (frames,
    vertices (F, V, 3), landmarks_2d (F, 68, 2)). Frames are matched by source index; a
    tracked frame missing from the truth, or another topology, is an error.
    """
    import torch

    try:
        rows = matched_frames(tracking["frames"], truth["frames"])
        vertex = vertex_errors_mm(tracking["vertices"], truth["vertices"][rows], face_region)
    except ValueError as exc:
        raise BadInput(f"results and ground truth do not match: {exc}") from exc
    pose = tracking["head_pose"]
    points = tracking["vertices"][:, landmark_vertex]
    cam = np.einsum("fij,fvj->fvi", pose[:, :3, :3], points) + pose[:, None, :3, 3]
    proj = project(torch.as_tensor(cam), torch.as_tensor(tracking["intrinsics"]))[..., :2].numpy()
    landmark = landmark_errors_px(proj, truth["landmarks_2d"][rows], landmark_mask)
    return TruthErrors(
        vertex_mm_mean=float(vertex.mean()),
        vertex_mm_p95=float(np.percentile(vertex, 95)),
        landmark_px_mean=float(landmark.mean()),
        landmark_px_p95=float(np.percentile(landmark, 95)),
        frames=len(rows),
    )
