"""Errors of a tracked clip against a rendered clip's ground truth (same head topology)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from backend.errors import BadInput
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
    """Vertex error (mm, face region) and landmark reprojection error (px) per frame, averaged.

    tracking: tracking.npz arrays; truth: truth.npz arrays of the rendered clip (frames,
    vertices (F, V, 3), landmarks_2d (F, 68, 2)). Frames are matched by source index; a
    tracked frame missing from the truth, or a vertex-count mismatch, is an error.
    """
    import torch

    truth_index = {int(f): i for i, f in enumerate(truth["frames"])}
    missing = [int(f) for f in tracking["frames"] if int(f) not in truth_index]
    if missing:
        raise BadInput(f"tracked frames {missing[:5]}... have no ground truth")
    rows = np.array([truth_index[int(f)] for f in tracking["frames"]])
    true_vertices = truth["vertices"][rows]
    if true_vertices.shape[1:] != tracking["vertices"].shape[1:]:
        raise BadInput(f"results have {tracking['vertices'].shape[1]} vertices, the truth "
                       f"{true_vertices.shape[1]}: different head topologies")
    diff = np.linalg.norm(tracking["vertices"] - true_vertices, axis=-1)[:, face_region] * 1000
    pose = tracking["head_pose"]
    points = tracking["vertices"][:, landmark_vertex]
    cam = np.einsum("fij,fvj->fvi", pose[:, :3, :3], points) + pose[:, None, :3, 3]
    proj = project(torch.as_tensor(cam), torch.as_tensor(tracking["intrinsics"]))[..., :2].numpy()
    lm_err = np.linalg.norm(proj - truth["landmarks_2d"][rows], axis=-1)[:, landmark_mask]
    return TruthErrors(
        vertex_mm_mean=float(diff.mean()),
        vertex_mm_p95=float(np.percentile(diff, 95)),
        landmark_px_mean=float(lm_err.mean()),
        landmark_px_p95=float(np.percentile(lm_err, 95)),
        frames=len(rows),
    )
