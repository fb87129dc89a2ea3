"""The NoW benchmark's protocol for scoring a face shape against a true one of another topology:
the truth's face points within NOW_CROP_M of its nose tip (`now_crop`), the scored shape aligned
to them by a similarity (first from the iBUG-68 landmarks both heads carry, then refined by
trimmed iterative closest points until they converge: `now_alignment`), and each truth point's
distance to the aligned surface (`surface_distances_mm`). Shared by the identity error and the
basis reach, which aligns every shape it tries.
"""

from __future__ import annotations

import numpy as np

from ..formats.head_file import HeadAsset
from ..similarity import umeyama

NOW_CROP_M = 0.095  # NoW crops scans to this radius around the nose tip
NOSE_TIP = 30  # iBUG-68
ICP_MAX_ITERATIONS = 100
# Stop when the kept pairs' mean distance moves less than this (metres). Ten fixed iterations
# were not enough: a head scored against itself with its landmarks on other vertices stopped at
# 0.42 mm; converged, it scores 0.
ICP_TOLERANCE_M = 1e-7
ICP_TRIM = 0.9  # the closest 90% of pairs refine the alignment (the rest: unmatched regions)


def now_crop(truth_vertices: np.ndarray, truth: HeadAsset) -> np.ndarray:
    """(P,) indices of the truth's face vertices within NOW_CROP_M of its nose tip
    (truth_vertices (V', 3), a shape of `truth`'s topology): the points NoW scores."""
    face = np.flatnonzero(truth.face_region)
    nose = truth_vertices[truth.landmark_vertex[NOSE_TIP]]
    return face[np.linalg.norm(truth_vertices[face] - nose, axis=1) < NOW_CROP_M]


def now_alignment(vertices: np.ndarray, head: HeadAsset, truth_vertices: np.ndarray,
                  truth: HeadAsset, points: np.ndarray) -> np.ndarray:
    """(4, 4) the similarity taking `vertices` (V, 3), a shape of `head`'s topology, onto the
    truth's face `points` (P, 3) (its `now_crop`): from the landmarks both heads carry, then trimmed
    ICP until it converges."""
    from scipy.spatial import cKDTree

    both = head.landmark_mask & truth.landmark_mask
    vertices = np.asarray(vertices, np.float64)
    transform = umeyama(vertices[head.landmark_vertex[both]],
                        truth_vertices[truth.landmark_vertex[both]].astype(np.float64))
    previous = np.inf
    for _ in range(ICP_MAX_ITERATIONS):
        moved = vertices @ transform[:3, :3].T + transform[:3, 3]
        distance, nearest = cKDTree(moved).query(points)
        kept = distance <= np.quantile(distance, ICP_TRIM)
        if previous - distance[kept].mean() < ICP_TOLERANCE_M:
            break
        previous = distance[kept].mean()
        transform = umeyama(vertices[nearest[kept]], points[kept])
    return transform


def surface_distances_mm(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray,
                         transform: np.ndarray) -> np.ndarray:
    """(P,) millimetres from each point (P, 3) to the surface of `vertices` (V, 3) moved by
    `transform` (4, 4), triangles `faces` (T, 3); only the triangles touching a point's 16
    nearest vertices are searched (enough on a mesh of even density)."""
    from scipy.spatial import cKDTree

    from ..identity.dense_landmarks import closest_surface_points

    moved = np.asarray(vertices, np.float64) @ transform[:3, :3].T + transform[:3, 3]
    _, near = cKDTree(moved).query(points, k=16)
    touching: dict[int, list[int]] = {}
    for t, tri in enumerate(faces):
        for v in tri:
            touching.setdefault(int(v), []).append(t)
    out = np.zeros(len(points))
    for i, p in enumerate(points):
        candidates = np.unique(np.concatenate([touching.get(int(v), []) for v in near[i]])).astype(np.int64)
        tri, weights = closest_surface_points(p[None], moved, faces[candidates])
        out[i] = np.linalg.norm(weights[0] @ moved[faces[candidates[tri[0]]]] - p)
    return out * 1000


def aligned_surface_distances_mm(vertices: np.ndarray, head: HeadAsset, truth_vertices: np.ndarray,
                                 truth: HeadAsset) -> np.ndarray:
    """(P,) millimetres from each of the truth's cropped face points to the surface of
    `vertices` (V, 3) (a shape of `head`'s topology) after the NoW alignment; truth_vertices
    (V', 3) a shape of `truth`'s topology. Both in metres, any common frame (the similarity
    removes pose and scale)."""
    points = truth_vertices[now_crop(truth_vertices, truth)].astype(np.float64)
    transform = now_alignment(vertices, head, truth_vertices, truth, points)
    return surface_distances_mm(points, vertices, head.faces, transform)
