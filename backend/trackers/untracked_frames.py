"""Frames without a face: their values are held from the nearest tracked frame (DESIGN.md:
confidence 0 marks them, never NaN), and the warning lists them as ranges."""

from __future__ import annotations

import numpy as np


def hold_untracked(values: np.ndarray, tracked: np.ndarray) -> np.ndarray:
    """Copy of values (F, ...) where each untracked frame takes the values of the nearest
    tracked frame (the earlier one on a tie). tracked: (F,) bool with at least one True."""
    tracked_at = np.flatnonzero(tracked)
    if not len(tracked_at):
        raise ValueError("no tracked frame to hold values from")
    nearest = tracked_at[np.abs(np.arange(len(tracked))[:, None] - tracked_at[None]).argmin(1)]
    return values[nearest]


def frame_ranges(indices: list[int]) -> str:
    """Sorted frame indices as ranges: [1, 2, 3, 7] -> '1-3, 7'."""
    parts, start = [], indices[0]
    for prev, cur in zip(indices, [*indices[1:], None], strict=False):
        if cur != prev + 1:
            parts.append(f"{start}-{prev}" if prev != start else f"{start}")
            start = cur
    return ", ".join(parts)
