"""Temporal smoothing of a per-frame regressor's outputs: an encoder predicts each frame on its
own, so its codes and poses carry frame-to-frame noise that the footage does not (measured in
docs/adaptation.md: on real clips a Gaussian of 1 frame cut the landmark jitter threefold while
the ground-truth vertex, rotation and landmark errors stayed the same).

Each run of consecutive frames with a face is smoothed on its own (a gap is never bridged);
frames without a face are left as they are. Rotations are averaged as matrices and projected
back onto the rotations (the nearest one, by SVD), which for neighbouring frames' rotations is
the usual chordal mean.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d


def smooth_over_time(latent: np.ndarray, pose: np.ndarray, tracked: np.ndarray,
                     sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(latent, pose) smoothed by a Gaussian of `sigma` frames along time (0: unchanged).

    latent: (F, Z) codes; pose: (F, 4, 4) rigid head -> camera poses (metres); tracked: (F,)
    bool. Returns new float32 arrays of the same shapes."""
    latent, pose = latent.astype(np.float32, copy=True), pose.astype(np.float32, copy=True)
    if sigma <= 0:
        return latent, pose
    edges = np.flatnonzero(np.diff(np.concatenate([[0], tracked.astype(np.int8), [0]])))
    for first, end in zip(edges[::2], edges[1::2], strict=True):  # each run of frames with a face
        if end - first < 2:
            continue
        rows = slice(first, end)
        latent[rows] = gaussian_filter1d(latent[rows].astype(np.float64), sigma, axis=0, mode="nearest")
        averaged = gaussian_filter1d(pose[rows, :3, :3].astype(np.float64), sigma, axis=0, mode="nearest")
        u, _, vt = np.linalg.svd(averaged)
        u[:, :, -1] *= np.sign(np.linalg.det(u @ vt))[:, None]  # a rotation, never a reflection
        pose[rows, :3, :3] = u @ vt
        pose[rows, :3, 3] = gaussian_filter1d(pose[rows, :3, 3].astype(np.float64), sigma, axis=0,
                                              mode="nearest")
    return latent, pose
