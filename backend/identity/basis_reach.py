"""The identity basis's reach: the rest shape closest to an actor's true face surface that the
basis allows, fitted in 3D to the truth itself. It is the yardstick of an identity fit (as the
DAM oracle is of a tracker): a fit from footage that scores far above it is limited by what the
footage tells it (landmarks, appearance), not by the basis.

The fit holds the NoW similarity of the rest shape (`identity_error.now_alignment`) and repeats:
each face-region vertex of the head paired with its nearest truth face point, the coefficients
solved by bounded linear least squares on the point-to-plane distances (the truth's normals), the
same bounds as `identity_fit` (MakeHuman's modifier ranges, the macro directions' bound).
"""

from __future__ import annotations

import numpy as np
import torch

from ..evaluation.identity_error import aligned_surface_distances_mm, now_alignment, now_crop
from ..formats.head_file import HeadAsset
from ..render.shading import vertex_normals
from .identity_basis import IdentityBasis

REACH_ROUNDS = 20
# Pairs farther than this (metres) are regions the truth's crop does not cover.
PAIR_LIMIT_M = 0.015
# A small pull toward zero: directions the face does not constrain (the scalp, the ears) stay put.
RIDGE = 1e-5


def basis_reach(head: HeadAsset, basis: IdentityBasis, truth: HeadAsset) -> np.ndarray:
    """(V, 3) float32 metres, head space: `head`'s rest shape displaced by the basis
    coefficients whose surface lies closest to `truth`'s rest face (another topology allowed)."""
    from scipy.optimize import lsq_linear
    from scipy.spatial import cKDTree

    truth_vertices = truth.vertices.astype(np.float64)
    normals = vertex_normals(torch.as_tensor(truth_vertices)[None], torch.as_tensor(truth.faces))[0].numpy()
    # Paired with the truth's whole face region: a crop's edge would pull the vertices beyond it.
    crop = np.flatnonzero(truth.face_region)
    rest = head.vertices.astype(np.float64)
    scored = truth_vertices[now_crop(truth_vertices, truth)]
    columns, lower, upper = _columns(basis)
    shape = rest
    best, best_error = rest, aligned_surface_distances_mm(rest, head, truth_vertices, truth).mean()
    for _ in range(REACH_ROUNDS):
        # The metric's own alignment of the current shape, then each face vertex paired with its
        # nearest truth point, along the truth's normal, in head space.
        transform = now_alignment(shape, head, truth_vertices, truth, scored)
        scale = np.cbrt(np.linalg.det(transform[:3, :3]))
        rotation = transform[:3, :3] / scale
        points = (truth_vertices[crop] - transform[:3, 3]) @ rotation / scale
        distance, nearest = cKDTree(points).query(shape)
        rows = np.flatnonzero((distance < PAIR_LIMIT_M / scale) & head.face_region)
        normal = normals[crop[nearest[rows]]] @ rotation
        a = np.einsum("pc,pcn->pn", normal, columns[rows])
        b = np.einsum("pc,pc->p", normal, points[nearest[rows]] - rest[rows])
        size = a.shape[1]
        solved = lsq_linear(np.vstack([a, np.sqrt(RIDGE) * np.eye(size)]),
                            np.concatenate([b, np.zeros(size)]), bounds=(lower, upper))
        shape = rest + np.einsum("vcn,n->vc", columns, solved.x)
        # Pairing and alignment alternate without a guarantee of descent: keep the best shape.
        error = aligned_surface_distances_mm(shape, head, truth_vertices, truth).mean()
        if error < best_error:
            best, best_error = shape, error
    return best.astype(np.float32)


def _columns(basis: IdentityBasis) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(V, 3, M) the basis's one-sided displacements as columns of a linear system, with their
    bounds (M,): each modifier's incr in [0, upper], its decr (when it has one) in [0, -lower]."""
    columns, lower, upper = [], [], []
    for n in range(basis.size):
        columns.append(basis.incr[n])
        lower.append(0.0)
        upper.append(basis.upper[n])
        if basis.lower[n] < 0:
            columns.append(basis.decr[n])
            lower.append(0.0)
            upper.append(-basis.lower[n])
    return np.stack(columns, -1).astype(np.float64), np.array(lower), np.array(upper)
