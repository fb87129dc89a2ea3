"""The identity basis's reach: the rest shape closest to an actor's true face surface that the
basis allows, fitted in 3D to the truth itself. It is the yardstick of an identity fit (as the
DAM oracle is of a tracker): a fit from footage that scores far above it is limited by what the
footage tells it (landmarks, appearance), not by the basis.

The fit holds the NoW similarity of the rest shape (`now_protocol.now_alignment`) and repeats:
each face-region vertex of the head paired with its nearest truth face point, the coefficients
solved by bounded linear least squares on the point-to-plane distances (the truth's normals), the
same bounds as `identity_fit` (MakeHuman's modifier ranges, the macro directions' bound).
"""

from __future__ import annotations

import numpy as np
import torch

from ..evaluation.now_protocol import now_alignment, now_crop, surface_distances_mm
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
    coefficients (`IdentityBasis.deltas`) whose surface lies closest to `truth`'s rest face
    (another topology allowed)."""
    from scipy.spatial import cKDTree

    truth_vertices = truth.vertices.astype(np.float64)
    normals = vertex_normals(torch.as_tensor(truth_vertices)[None], torch.as_tensor(truth.faces))[0].numpy()
    # Paired with the truth's whole face region: a crop's edge would pull the vertices beyond it.
    face_points = np.flatnonzero(truth.face_region)
    scored = truth_vertices[now_crop(truth_vertices, truth)]
    rest = head.vertices.astype(np.float64)
    shape, best, best_error = rest, rest, np.inf
    for round_ in range(REACH_ROUNDS + 1):
        # The metric's own alignment of the current shape scores it, then each face vertex is
        # paired with its nearest truth point, along the truth's normal, in head space.
        transform = now_alignment(shape, head, truth_vertices, truth, scored)
        # Pairing and alignment alternate without a guarantee of descent: keep the best shape.
        error = surface_distances_mm(scored, shape, head.faces, transform).mean()
        if error < best_error:
            best, best_error = shape, error
        if round_ == REACH_ROUNDS:
            break
        scale = np.cbrt(np.linalg.det(transform[:3, :3]))
        rotation = transform[:3, :3] / scale
        points = (truth_vertices[face_points] - transform[:3, 3]) @ rotation / scale
        distance, nearest = cKDTree(points).query(shape)
        rows = np.flatnonzero((distance < PAIR_LIMIT_M / scale) & head.face_region)
        normal = normals[face_points[nearest[rows]]] @ rotation
        along = np.einsum("pc,pc->p", normal, points[nearest[rows]] - rest[rows])
        shape = rest + basis.deltas(_signed_coefficients(basis, normal, rows, along))
    return best.astype(np.float32)


def _signed_coefficients(basis: IdentityBasis, normal: np.ndarray, rows: np.ndarray,
                         along: np.ndarray) -> np.ndarray:
    """(N,) coefficients within the basis's bounds whose displacement of the vertices `rows`
    along `normal` (P, 3) best matches `along` (P,) metres. A modifier moves one way at a time
    (its incr for c > 0, its decr for c < 0): first both sides solved as separate non-negative
    columns, which picks each modifier's side, then the chosen sides alone."""
    from scipy.optimize import lsq_linear

    def solve(columns: np.ndarray, upper: np.ndarray) -> np.ndarray:
        a = np.einsum("pc,npc->pn", normal, columns[:, rows].astype(np.float64))
        size = a.shape[1]
        return lsq_linear(np.vstack([a, np.sqrt(RIDGE) * np.eye(size)]),
                          np.concatenate([along, np.zeros(size)]), bounds=(0.0, upper)).x

    two_sided = np.flatnonzero(basis.lower < 0)
    both = solve(np.concatenate([basis.incr, basis.decr[two_sided]]),
                 np.concatenate([basis.upper, -basis.lower[two_sided]]))
    negative = np.zeros(basis.size, bool)
    negative[two_sided] = both[basis.size:] > both[two_sided]
    columns = np.where(negative[:, None, None], basis.decr, basis.incr)
    amount = solve(columns, np.where(negative, -basis.lower, basis.upper))
    return np.where(negative, -amount, amount)
