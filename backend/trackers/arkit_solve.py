"""ARKit weights from vertices a tracker did not get from weights (a DAM decodes vertices):
bounded least squares of the offsets from the rest head onto the head's blendshapes, over the
face region, so the Blender side can key the 52 sliders of a tracked performance.

The shapes span less than the DAM can decode: the residual is reported (mean and p95 of the
per-frame mean vertex distance, mm) so a user knows what the sliders lose against the exact
per-frame vertices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import lsq_linear

from ..formats.head_file import HeadAsset


@dataclass
class ArkitSolve:
    """weights (F, K) in [0, 1] on the head's shapes; vertex_mm: mean over tracked frames of
    the mean face-region distance (mm) between the vertices and the shapes' reconstruction;
    vertex_mm_p95 the 95th percentile over frames."""

    weights: np.ndarray
    vertex_mm: float
    vertex_mm_p95: float


def solve_arkit_weights(head: HeadAsset, vertices: np.ndarray, tracked: np.ndarray) -> ArkitSolve:
    """Weights for head-space vertices (F, V, 3) metres; untracked frames get zeros."""
    face = head.face_region
    basis = head.blendshapes[:, face].reshape(len(head.blendshapes), -1).T.astype(np.float64)
    # A = QR: each frame's problem shrinks from 3 x face vertices rows to K rows.
    q, r = np.linalg.qr(basis)
    rest = head.vertices[face].astype(np.float64)
    weights = np.zeros((len(vertices), basis.shape[1]), np.float32)
    errors = []
    for f in np.flatnonzero(tracked):
        # One frame's offsets at a time: working memory does not grow with the clip.
        offsets = (vertices[f, face] - rest).reshape(-1)
        solution = lsq_linear(r, q.T @ offsets, bounds=(0.0, 1.0), method="bvls")
        weights[f] = solution.x
        rebuilt = (basis @ solution.x).reshape(-1, 3)
        errors.append(np.linalg.norm(rebuilt - offsets.reshape(-1, 3), axis=1).mean() * 1000)
    errors_mm = np.array(errors) if errors else np.zeros(1)
    return ArkitSolve(weights, float(errors_mm.mean()), float(np.percentile(errors_mm, 95)))
