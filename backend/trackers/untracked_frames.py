"""Frames without a face: their values are held from the nearest tracked frame (DESIGN.md:
confidence 0 marks them, never NaN), and the warning lists them as ranges."""

from __future__ import annotations

import numpy as np


def hold_untracked(values: np.ndarray, tracked: np.ndarray) -> np.ndarray:
    """values (F, ...) where each untracked frame takes the values of the nearest tracked frame
    (the earlier one on a tie): a new array, or `values` itself when every frame is tracked (a
    long clip's vertices are not copied for nothing). tracked: (F,) bool with at least one True."""
    tracked_at = np.flatnonzero(tracked)
    if not len(tracked_at):
        raise ValueError("no tracked frame to hold values from")
    if len(tracked_at) == len(tracked):
        return values
    # The tracked frames on either side of each frame (linear in the clip: a 100k-frame clip
    # must not build a frames x tracked-frames table).
    frames = np.arange(len(tracked))
    after = np.minimum(np.searchsorted(tracked_at, frames), len(tracked_at) - 1)
    before = np.maximum(after - 1, 0)
    earlier_is_nearer = np.abs(frames - tracked_at[before]) <= np.abs(tracked_at[after] - frames)
    return values[np.where(earlier_is_nearer, tracked_at[before], tracked_at[after])]


def frame_ranges(indices: list[int]) -> str:
    """Sorted frame indices as ranges: [1, 2, 3, 7] -> '1-3, 7'."""
    parts, start = [], indices[0]
    for prev, cur in zip(indices, [*indices[1:], None], strict=False):
        if cur != prev + 1:
            parts.append(f"{start}-{prev}" if prev != start else f"{start}")
            start = cur
    return ", ".join(parts)
