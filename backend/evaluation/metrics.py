"""Tracking metrics on plain arrays (numpy), each with a known answer on constructed cases.

Shapes: F frames, V vertices, 68 landmarks. Units: metres in, millimetres or pixels out, as
named. Nothing here averages away a problem silently: mismatched inputs raise ValueError.
"""

from __future__ import annotations

import numpy as np


def _same_shape(name: str, a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name}: shapes differ, {a.shape} vs {b.shape}")


def clip_scale(predicted: np.ndarray, truth: np.ndarray, region: np.ndarray) -> float:
    """The one scale s minimising sum |s * predicted - truth|^2 over the clip and region: what a
    monocular tracker cannot know when the head's size is unknown. (F, V, 3) each."""
    p, t = predicted[:, region].reshape(-1), truth[:, region].reshape(-1)
    return float(p @ t / max(p @ p, 1e-12))


def vertex_errors_mm(predicted: np.ndarray, truth: np.ndarray, region: np.ndarray,
                     align_scale: bool = False) -> np.ndarray:
    """(F, R) per-vertex distances in millimetres over the region's R vertices, after the
    clip-wide scale alignment when `align_scale`. predicted, truth: (F, V, 3) metres."""
    _same_shape("vertices", predicted, truth)
    if region.shape != predicted.shape[1:2]:
        raise ValueError(f"region mask {region.shape} does not match {predicted.shape[1]} vertices")
    scale = clip_scale(predicted, truth, region) if align_scale else 1.0
    return np.linalg.norm(scale * predicted[:, region] - truth[:, region], axis=-1) * 1000


def rotation_errors_deg(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(F,) angle of the relative rotation, degrees. predicted, truth: (F, 3, 3)."""
    _same_shape("rotations", predicted, truth)
    relative = predicted @ np.swapaxes(truth, -1, -2)
    cosine = (np.trace(relative, axis1=-2, axis2=-1) - 1) / 2
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


def landmark_errors_px(predicted: np.ndarray, truth: np.ndarray,
                       mask: np.ndarray | None = None) -> np.ndarray:
    """(F, M) point distances in pixels over the masked points. (F, 68, 2) each."""
    _same_shape("landmarks", predicted, truth)
    error = np.linalg.norm(predicted - truth, axis=-1)
    return error if mask is None else error[:, mask]


def jitter_px(landmarks: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean length of the second difference of landmark tracks, pixels (0 for a constant or
    uniformly moving track). landmarks: (F, 68, 2), F >= 3."""
    if len(landmarks) < 3:
        raise ValueError(f"jitter needs at least 3 frames, got {len(landmarks)}")
    second = landmarks[2:] - 2 * landmarks[1:-1] + landmarks[:-2]
    norms = np.linalg.norm(second, axis=-1)
    return float((norms if mask is None else norms[:, mask]).mean())


def fit_colour_transform(rendered: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """(3, 4) affine colour map A minimising |A [rgb, 1] - observed|^2 over (N, 3) samples;
    computed the same way for every method so photometric errors compare fairly."""
    _same_shape("colours", rendered, observed)
    design = np.concatenate([rendered, np.ones((len(rendered), 1))], axis=1)
    solution, *_ = np.linalg.lstsq(design, observed, rcond=None)
    return solution.T


def photometric_error(rendered: np.ndarray, observed: np.ndarray) -> float:
    """RMS colour error (same units as the inputs) after the best-fit affine colour transform.
    rendered, observed: (N, 3) colours of the face-region pixels of a clip."""
    transform = fit_colour_transform(rendered, observed)
    mapped = np.concatenate([rendered, np.ones((len(rendered), 1))], axis=1) @ transform.T
    return float(np.sqrt(((mapped - observed) ** 2).mean()))


def matched_frames(results_frames: np.ndarray, truth_frames: np.ndarray) -> np.ndarray:
    """Rows of the truth for every result frame; ValueError naming frames the truth lacks."""
    index = {int(f): i for i, f in enumerate(truth_frames)}
    missing = [int(f) for f in results_frames if int(f) not in index]
    if missing:
        raise ValueError(f"{len(missing)} tracked frame(s) have no ground truth, e.g. {missing[:5]}")
    return np.array([index[int(f)] for f in results_frames], dtype=np.int64)
