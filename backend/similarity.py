"""The similarity transform (scale, rotation, translation) best mapping one point set onto
another (Umeyama 1991): aligning a head to a canonical face, or a fitted head to the truth
before comparing shapes (the NoW benchmark's rigid + scale alignment)."""

from __future__ import annotations

import numpy as np


def umeyama(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(4, 4) similarity s R x + t best mapping source (N, 3) onto target (N, 3)."""
    mu_s, mu_t = source.mean(0), target.mean(0)
    a, b = source - mu_s, target - mu_t
    u, sigma, vt = np.linalg.svd(b.T @ a / len(a))
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ d @ vt
    scale = np.trace(np.diag(sigma) @ d) / (a**2).sum(1).mean()
    out = np.eye(4)
    out[:3, :3] = scale * rotation
    out[:3, 3] = mu_t - scale * rotation @ mu_s
    return out


def aligned_distances(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(N,) distances between corresponding points (N, 3) after the best similarity maps
    source onto target."""
    t = umeyama(np.asarray(source, np.float64), np.asarray(target, np.float64))
    return np.linalg.norm(source @ t[:3, :3].T + t[:3, 3] - target, axis=1)
