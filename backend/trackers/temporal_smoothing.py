"""Temporal smoothing of a per-frame regressor's outputs: an encoder predicts each frame on its
own, so its codes and poses carry frame-to-frame noise that the footage does not (measured in
docs/adaptation.md).

Each frame becomes a weighted mean of its neighbours: a Gaussian of `sigma` frames over time,
times how little the detected face moved between the two frames (exp(-(m / motion_scale)^2),
m the mean landmark displacement over the inter-ocular distance). Slow footage is smoothed by the
Gaussian alone; a fast head turn or a cut keeps its own frames (a fixed Gaussian lagged behind a
fast-moving clip, raising its landmark error). Each run of consecutive frames with a face is
smoothed on its own (a gap is never bridged); frames without a face are left as they are.
Rotations are averaged as matrices and projected back onto the rotations (the nearest one, by
SVD), the usual chordal mean for neighbouring frames' rotations.
"""

from __future__ import annotations

import math

import numpy as np

# Landmark motion between two frames, in inter-ocular distances, at which their weight falls to
# 1/e: a still face's detection noise (about 0.01) keeps nearly full weight, a head moving a
# tenth of its eye distance per frame almost none.
MOTION_SCALE = 0.05


def smooth_over_time(latent: np.ndarray, pose: np.ndarray, tracked: np.ndarray, sigma: float,
                     points: np.ndarray, confidence: np.ndarray, inter_ocular: np.ndarray,
                     motion_scale: float = MOTION_SCALE) -> tuple[np.ndarray, np.ndarray]:
    """(latent, pose) smoothed over time (sigma 0: unchanged).

    latent: (F, Z) codes; pose: (F, 4, 4) rigid head -> camera poses (metres); tracked: (F,)
    bool; points (F, 68, 2) and confidence (F, 68): the detected landmarks (pixels) that say
    how fast the face moves; inter_ocular: (F,) pixels. Returns new float32 arrays."""
    latent, pose = latent.astype(np.float32, copy=True), pose.astype(np.float32, copy=True)
    if sigma <= 0:
        return latent, pose
    reach = max(1, math.ceil(3 * sigma))
    edges = np.flatnonzero(np.diff(np.concatenate([[0], tracked.astype(np.int8), [0]])))
    for first, end in zip(edges[::2], edges[1::2], strict=True):  # each run of frames with a face
        if end - first < 2:
            continue
        rows = np.arange(first, end)
        weights = _weights(rows, points, confidence, inter_ocular, sigma, motion_scale, reach)
        neighbours = np.clip(rows[:, None] + np.arange(-reach, reach + 1)[None], first, end - 1)
        latent[rows] = np.einsum("fk,fkz->fz", weights, latent[neighbours].astype(np.float64))
        averaged = np.einsum("fk,fkij->fij", weights, pose[neighbours, :3, :3].astype(np.float64))
        u, _, vt = np.linalg.svd(averaged)
        u[:, :, -1] *= np.sign(np.linalg.det(u @ vt))[:, None]  # a rotation, never a reflection
        pose[rows, :3, :3] = u @ vt
        pose[rows, :3, 3] = np.einsum("fk,fkc->fc", weights, pose[neighbours, :3, 3].astype(np.float64))
    return latent, pose


def _weights(rows: np.ndarray, points: np.ndarray, confidence: np.ndarray, inter_ocular: np.ndarray,
             sigma: float, motion_scale: float, reach: int) -> np.ndarray:
    """(R, 2 reach + 1) normalised weights of each row's neighbours at offsets -reach..reach
    (beyond the run's ends: weight 0)."""
    first, end = rows[0], rows[-1] + 1
    offsets = np.arange(-reach, reach + 1)
    weights = np.zeros((len(rows), len(offsets)))
    for column, offset in enumerate(offsets):
        other = rows + offset
        inside = (other >= first) & (other < end)
        i, j = rows[inside], other[inside]
        usable = (confidence[i] > 0.1) & (confidence[j] > 0.1)
        distance = np.linalg.norm(points[i] - points[j], axis=-1)
        motion = (distance * usable).sum(1) / np.maximum(usable.sum(1), 1) / np.maximum(inter_ocular[i], 1e-6)
        weights[inside, column] = np.exp(-0.5 * (offset / sigma) ** 2 - (motion / motion_scale) ** 2)
    return weights / weights.sum(1, keepdims=True)
