"""How far a fitted head's rest shape is from an actor's true one, across topologies (the NoW
benchmark's protocol): the truth's face points within NOW_CROP_M of its nose tip, the fitted
head aligned to them by a similarity (first from the iBUG-68 landmarks both heads carry, then
refined by trimmed iterative closest points until they converge), and each truth point's
distance to the fitted head's surface.

`evaluate-identity HEAD --truth CLIP` scores a head (e.g. from `fit-identity`) against a
ground-truth clip's head beside the default head's score and the basis reach's (the default
head reshaped by the identity basis as close to the truth as it allows: the floor of a fit).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..config_parser import option, positional, report_option, required
from ..formats.head_file import HeadAsset, load_head
from ..similarity import umeyama

NOW_CROP_M = 0.095  # NoW crops scans to this radius around the nose tip
NOSE_TIP = 30  # iBUG-68
ICP_MAX_ITERATIONS = 100
# Stop when the kept pairs' mean distance moves less than this (metres). Ten fixed iterations
# were not enough: a head scored against itself with its landmarks on other vertices stopped at
# 0.42 mm; converged, it scores 0.
ICP_TOLERANCE_M = 1e-7
ICP_TRIM = 0.9  # the closest 90% of pairs refine the alignment (the rest: unmatched regions)


@dataclass(frozen=True)
class EvaluateIdentityConfig:
    head: Path = positional("head.npz whose rest shape is scored (e.g. from fit-identity)")
    truth: Path = required("ground-truth clip folder (its head.npz is the actor) or a head.npz")
    reference: str = option("default", "head scored beside it: 'default' or a head.npz path")
    json: Path | None = report_option()


def _surface_distances(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(P,) distance of each point (P, 3) to the nearest of the triangles (T, 3) that touch its
    16 nearest vertices (enough on a mesh of even density)."""
    from scipy.spatial import cKDTree

    from ..identity.dense_landmarks import closest_surface_points

    _, near = cKDTree(vertices).query(points, k=16)
    touching: dict[int, list[int]] = {}
    for t, tri in enumerate(faces):
        for v in tri:
            touching.setdefault(int(v), []).append(t)
    out = np.zeros(len(points))
    for i, p in enumerate(points):
        candidates = np.unique(np.concatenate([touching.get(int(v), []) for v in near[i]])).astype(np.int64)
        tri, weights = closest_surface_points(p[None], vertices, faces[candidates])
        out[i] = np.linalg.norm(weights[0] @ vertices[faces[candidates[tri[0]]]] - p)
    return out


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


def aligned_surface_distances_mm(vertices: np.ndarray, head: HeadAsset, truth_vertices: np.ndarray,
                                 truth: HeadAsset) -> np.ndarray:
    """(P,) millimetres from each of the truth's cropped face points to the surface of
    `vertices` (V, 3) (a shape of `head`'s topology) after the NoW alignment; truth_vertices
    (V', 3) a shape of `truth`'s topology. Both in metres, any common frame (the similarity
    removes pose and scale)."""
    points = truth_vertices[now_crop(truth_vertices, truth)].astype(np.float64)
    vertices = np.asarray(vertices, np.float64)
    transform = now_alignment(vertices, head, truth_vertices, truth, points)
    moved = vertices @ transform[:3, :3].T + transform[:3, 3]
    return _surface_distances(points, moved, head.faces) * 1000


# iBUG-68 regions: a truth point belongs to the region of its nearest landmark.
REGIONS = {"jaw": range(0, 17), "brows": range(17, 27), "nose": range(27, 36),
           "eyes": range(36, 48), "mouth": range(48, 68)}


def identity_error_mm(head: HeadAsset, truth: HeadAsset) -> dict:
    """NoW-style error of `head`'s rest shape against `truth`'s (both (V, 3) head space):
    mean, median and p90 in millimetres over the truth's cropped face points, and the mean per
    region ("regions_mm": jaw, brows, nose, eyes, mouth; points grouped by their nearest of the
    truth's iBUG-68 landmarks)."""
    d = aligned_surface_distances_mm(head.vertices, head, truth.vertices, truth)
    points = truth.vertices[now_crop(truth.vertices, truth)]
    landmarks = truth.vertices[truth.landmark_vertex[truth.landmark_mask]]
    nearest = np.flatnonzero(truth.landmark_mask)[
        np.argmin(((points[:, None] - landmarks[None]) ** 2).sum(-1), axis=1)]
    regions = {name: round(float(d[np.isin(nearest, list(ids))].mean()), 3)
               for name, ids in REGIONS.items() if np.isin(nearest, list(ids)).any()}
    return {"mean_mm": round(float(d.mean()), 3), "median_mm": round(float(np.median(d)), 3),
            "p90_mm": round(float(np.percentile(d, 90)), 3), "points": len(d), "regions_mm": regions}


def basis_reach_error_mm(truth: HeadAsset) -> dict:
    """`identity_error_mm` of the default head reshaped by the identity basis as close to
    `truth` as the basis allows (identity/basis_reach.py): the floor of an identity fit."""
    from ..heads.default_head import default_head
    from ..identity.basis_reach import basis_reach
    from ..identity.identity_basis import identity_basis

    head = default_head()
    return identity_error_mm(replace(head, vertices=basis_reach(head, identity_basis(), truth)), truth)


def evaluate_identity(config: EvaluateIdentityConfig) -> dict:
    """The report of `evaluate-identity`: the head's error, the reference head's and the basis
    reach's (the least the identity basis allows)."""
    from ..heads.default_head import resolve_head

    truth_path = config.truth / "head.npz" if config.truth.is_dir() else config.truth
    truth = load_head(truth_path)
    return {"truth": str(truth_path),
            "head": {"path": str(config.head), **identity_error_mm(load_head(config.head), truth)},
            "reference": {"head": config.reference,
                          **identity_error_mm(resolve_head(config.reference), truth)},
            "basis_reach": basis_reach_error_mm(truth)}
