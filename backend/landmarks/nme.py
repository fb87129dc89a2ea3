"""Normalised mean error of 68-point landmarks (300-W convention: inter-ocular distance), and
the inter-ocular distance itself, the one scale every landmark error in FaceAdapt is
normalised by."""

from __future__ import annotations

import numpy as np

# Outer eye corners in iBUG-68 order.
LEFT_EYE_OUTER = 36
RIGHT_EYE_OUTER = 45


def inter_ocular(points: np.ndarray) -> np.ndarray:
    """(...,) distance between the outer eye corners of (..., 68, 2) points."""
    return np.linalg.norm(points[..., LEFT_EYE_OUTER, :] - points[..., RIGHT_EYE_OUTER, :], axis=-1)


def clip_inter_ocular(points: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """(F,) float32 inter-ocular distance of each frame's (F, 68, 2) points, pixels; the clip's
    median where a frame lacks an eye corner (confidence (F, 68) 0) or its distance is under
    a pixel, and 1 when no frame has one: a scale defined for every frame of a clip."""
    iod = inter_ocular(points)
    ok = (confidence[:, LEFT_EYE_OUTER] > 0) & (confidence[:, RIGHT_EYE_OUTER] > 0) & (iod > 1)
    fallback = float(np.median(iod[ok])) if ok.any() else 1.0
    return np.where(ok, iod, fallback).astype(np.float32)


def nme(predicted: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(...,) mean point error divided by the truth's inter-ocular distance.

    predicted, truth: (..., 68, 2) of one shape (ValueError otherwise); mask (68,) bool
    selects the points scored.
    """
    if predicted.shape != truth.shape:
        raise ValueError(f"landmarks: shapes differ, {predicted.shape} vs {truth.shape}")
    err = np.linalg.norm(predicted - truth, axis=-1)
    if mask is not None:
        err = err[..., mask]
    return err.mean(-1) / inter_ocular(truth)
