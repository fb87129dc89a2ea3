"""A tracked clip's per-frame vertices compressed to a few shape keys (the "compact basis"
import mode): PCA of the frames, so a 5,000-frame clip becomes K shape keys and K animated
sliders instead of 5,000 shapes.

Frame f is reconstructed as

    rest + (mean - rest) + sum_k weights[f, k] * components[k]

which is what Blender plays with a shape key `mean - rest` held at 1.0 and one shape key per
component (deltas from the basis `rest`) driven by `weights[:, k]`. Each component is scaled so
its weight column peaks at |w| = 1: shape key sliders ranging over [-1, 1] are enough (Blender's
slider_min defaults to 0; the importer sets it to -1).

How the principal components are found: a randomized truncated SVD (Halko, Martinsson & Tropp
2011, with power iterations) of the centred (F, 3V) frame matrix, streamed in column blocks.
For the largest clips planned (F = 5,000 frames, V = 30,000 vertices: 1.8 GB of float32) the
full SVD, and the F x F Gram matrix's eigendecomposition (F^2 * 3V flops to form it, several
times this method's ~14 (K + 10) * F * 3V, plus an F x F eigensolve; and it squares the
condition number, losing small components to round-off), both cost more than needed: only
K + 10 directions are ever wanted. Each pass over the data converts one column block
(<= 64 MB) to float64 and centres it, so the input is never copied whole; the sketches are
(F, K + 10) and (K + 10, 3V) float64. A fixed seed and a sign rule (each component's largest
coordinate positive) make the result deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_OVERSAMPLING = 10  # extra sketch directions beyond the K wanted (Halko et al. section 4.2)
_POWER_ITERATIONS = 2  # sharpen the sketch toward the leading singular vectors
_BLOCK_BYTES = 64 * 1024 * 1024  # float64 block of the frame matrix held at once
# Singular values below this fraction of the largest are float32 round-off of the input (its
# coordinates hold ~7 significant digits), not motion: they are never kept as components.
_RANK_FLOOR = 1e-6


@dataclass
class CompactBasis:
    """A clip as mean + weighted components; arrays float32, positions in metres.

    rest        (V, 3)    the basis the shape keys are deltas from
    mean        (V, 3)    mean position of every vertex over the clip
    components  (K, V, 3) deltas, each scaled so its weight column peaks at |w| = 1
    weights     (F, K)    in [-1, 1]
    frame_max_error  (F,) largest vertex distance of the reconstruction from the input, metres
    frame_mean_error (F,) mean vertex distance, metres
    """

    rest: np.ndarray
    mean: np.ndarray
    components: np.ndarray
    weights: np.ndarray
    frame_max_error: np.ndarray
    frame_mean_error: np.ndarray

    @property
    def num_components(self) -> int:
        return len(self.components)

    @property
    def mean_offset(self) -> np.ndarray:
        """(V, 3) the shape key (delta from `rest`) held at 1.0 on every frame."""
        return self.mean - self.rest

    @property
    def max_error(self) -> float:
        """Largest vertex distance over the whole clip, metres."""
        return float(self.frame_max_error.max())

    @property
    def mean_error(self) -> float:
        """Mean vertex distance over the whole clip, metres."""
        return float(self.frame_mean_error.mean())

    def reconstruct(self, frames: np.ndarray | slice = slice(None)) -> np.ndarray:
        """(F', V, 3) float32 positions of `frames` (indices into the clip) as Blender plays them."""
        weights = self.weights[frames].astype(np.float64)
        deltas = np.tensordot(weights, self.components.astype(np.float64), axes=(1, 0))
        return (self.mean.astype(np.float64) + deltas).astype(np.float32)


def fit_compact_basis(vertices: np.ndarray, rest: np.ndarray, max_components: int,
                      tolerance_m: float | None = None) -> CompactBasis:
    """PCA basis of `vertices` (F, V, 3) float, metres, as deltas from `rest` (V, 3).

    K: with `tolerance_m`, the smallest count (up to `max_components`) whose largest vertex error
    over all frames is <= tolerance_m (K - 1 components exceed it; when even max_components
    exceed it, max_components, and the errors say by how much); without, max_components. Never
    more than the motion holds: K is 0 for one frame or identical frames.
    """
    if vertices.ndim != 3 or vertices.shape[2] != 3 or len(vertices) == 0:
        raise ValueError(f"vertices must be (frames >= 1, V, 3), got {vertices.shape}")
    if rest.shape != vertices.shape[1:]:
        raise ValueError(f"rest must be {vertices.shape[1:]} (V, 3), got {rest.shape}")
    if max_components < 0:
        raise ValueError(f"max_components must be >= 0, got {max_components}")
    if tolerance_m is not None and not tolerance_m > 0:
        raise ValueError(f"tolerance_m must be above 0 metres, got {tolerance_m}")
    frames = vertices.reshape(len(vertices), -1)  # (F, 3V), a view of the input
    mean = frames.mean(axis=0, dtype=np.float64)
    singular, right = _leading_singular_directions(frames, mean, max_components)
    rank = int(np.sum(singular > _RANK_FLOOR * singular[0])) if len(singular) and singular[0] > 0 else 0
    right = right[:min(rank, max_components)]
    weights = _project(frames, mean, right)  # (F, Kmax): principal coordinates
    components, weights = _scale_to_unit_weights(right, weights)
    count = len(components)
    if tolerance_m is not None:
        count = _smallest_within(frames, mean, components, weights, tolerance_m)
    frame_max, frame_mean = _frame_errors(frames, mean, components[:count], weights[:, :count])
    num_vertices = vertices.shape[1]
    return CompactBasis(
        rest=np.asarray(rest, dtype=np.float32),
        mean=mean.astype(np.float32).reshape(num_vertices, 3),
        components=components[:count].reshape(count, num_vertices, 3),
        weights=weights[:, :count],
        frame_max_error=frame_max, frame_mean_error=frame_mean)


def _column_blocks(frames: np.ndarray) -> range:
    """Starts of column blocks of (F, 3V) `frames` whose float64 copies fit _BLOCK_BYTES."""
    return range(0, frames.shape[1], _block_width(frames))


def _block_width(frames: np.ndarray) -> int:
    return max(1, _BLOCK_BYTES // (8 * frames.shape[0]))


def _leading_singular_directions(frames: np.ndarray, mean: np.ndarray,
                                 count: int) -> tuple[np.ndarray, np.ndarray]:
    """Singular values (L,) and right singular vectors (L, 3V) of the centred `frames`, the
    leading L = min(count + oversampling, F, 3V) of them, in decreasing order, signs fixed."""
    num_frames, width = frames.shape
    sketch_size = min(count + _OVERSAMPLING, num_frames, width) if count > 0 else 0
    if sketch_size == 0:
        return np.zeros(0), np.zeros((0, width))
    step = _block_width(frames)
    rng = np.random.default_rng(0)
    # Y = Xc @ Omega with Omega (3V, L) Gaussian, drawn block by block with the same generator.
    sketch = np.zeros((num_frames, sketch_size))
    for start in _column_blocks(frames):
        block = frames[:, start:start + step] - mean[start:start + step]
        sketch += block @ rng.standard_normal((block.shape[1], sketch_size))
    basis = np.linalg.qr(sketch)[0]
    for _ in range(_POWER_ITERATIONS):
        # Xc Xc^T Q = sum over column blocks of B (B^T Q): one pass, no (3V, L) intermediate.
        sketch = np.zeros_like(basis)
        for start in _column_blocks(frames):
            block = frames[:, start:start + step] - mean[start:start + step]
            sketch += block @ (block.T @ basis)
        basis = np.linalg.qr(sketch)[0]
    projected = np.empty((sketch_size, width))  # Q^T Xc: the data in the sketch's span
    for start in _column_blocks(frames):
        block = frames[:, start:start + step] - mean[start:start + step]
        projected[:, start:start + step] = basis.T @ block
    _, singular, right = np.linalg.svd(projected, full_matrices=False)
    # SVD signs are arbitrary: make each direction's largest-magnitude coordinate positive.
    largest = right[np.arange(len(right)), np.abs(right).argmax(axis=1)]
    right *= np.where(largest < 0, -1.0, 1.0)[:, None]
    return singular, right


def _project(frames: np.ndarray, mean: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """(F, K) coordinates of the centred `frames` (F, 3V) along orthonormal `directions` (K, 3V)."""
    step = _block_width(frames)
    weights = np.zeros((frames.shape[0], len(directions)))
    for start in _column_blocks(frames):
        block = frames[:, start:start + step] - mean[start:start + step]
        weights += block @ directions[:, start:start + step].T
    return weights


def _scale_to_unit_weights(directions: np.ndarray,
                           weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Components (K, 3V) and weights (F, K), float32, rescaled so max |weights[:, k]| = 1 with
    their product unchanged."""
    peak = np.abs(weights).max(axis=0) if weights.size else np.zeros(len(directions))
    # Kept components carry motion above the rank floor, so their peaks are above 0.
    components = (directions * peak[:, None]).astype(np.float32)
    return components, (weights / peak).astype(np.float32)


def _frame_errors(frames: np.ndarray, mean: np.ndarray, components: np.ndarray,
                  weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame largest and mean vertex distance (F,) float32, metres, between `frames`
    (F, 3V) and their reconstruction from the float32 mean, components and weights Blender
    will play (the rounding to float32 counts as error too)."""
    num_frames, width = frames.shape
    mean32 = mean.astype(np.float32).astype(np.float64)
    components64 = components.astype(np.float64)
    frame_max = np.empty(num_frames, np.float32)
    frame_mean = np.empty(num_frames, np.float32)
    rows = max(1, _BLOCK_BYTES // (8 * width))
    for start in range(0, num_frames, rows):
        stop = min(start + rows, num_frames)
        residual = frames[start:stop] - mean32 - weights[start:stop].astype(np.float64) @ components64
        distance = np.linalg.norm(residual.reshape(stop - start, -1, 3), axis=2)  # (rows, V)
        frame_max[start:stop] = distance.max(axis=1)
        frame_mean[start:stop] = distance.mean(axis=1)
    return frame_max, frame_mean


def _smallest_within(frames: np.ndarray, mean: np.ndarray, components: np.ndarray,
                     weights: np.ndarray, tolerance_m: float) -> int:
    """The fewest leading components whose largest vertex error is <= tolerance_m (all of them
    when none suffice). Bisection: one pass over the data per step, log2(K) passes instead of K.
    The largest error of a truncated PCA is not strictly monotone in K (each component lowers
    every frame's total residual, not every vertex's), so the count found is minimal in the
    sense that one component fewer exceeds the tolerance."""

    def within(count: int) -> bool:
        frame_max, _ = _frame_errors(frames, mean, components[:count], weights[:, :count])
        return bool(frame_max.max() <= tolerance_m)

    low, high = 0, len(components)  # invariant: `low` components exceed, `high` suffice
    if within(low):
        return low
    if not within(high):
        return high
    while high - low > 1:
        middle = (low + high) // 2
        if within(middle):
            high = middle
        else:
            low = middle
    return high
