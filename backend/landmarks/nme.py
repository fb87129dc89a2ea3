"""Normalised mean error of 68-point landmarks (300-W convention: inter-ocular distance)."""

from __future__ import annotations

import numpy as np

# Outer eye corners in iBUG-68 order.
LEFT_EYE_OUTER = 36
RIGHT_EYE_OUTER = 45


def inter_ocular(points: np.ndarray) -> np.ndarray:
    """(...,) distance between the outer eye corners of (..., 68, 2) points."""
    return np.linalg.norm(points[..., LEFT_EYE_OUTER, :] - points[..., RIGHT_EYE_OUTER, :], axis=-1)


def nme(predicted: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(...,) mean point error divided by the truth's inter-ocular distance.

    predicted, truth: (..., 68, 2); mask (68,) bool selects the points scored.
    """
    err = np.linalg.norm(predicted - truth, axis=-1)
    if mask is not None:
        err = err[..., mask]
    return err.mean(-1) / inter_ocular(truth)
