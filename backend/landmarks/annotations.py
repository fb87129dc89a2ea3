"""iBUG/300-W `.pts` annotation files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..formats.errors import BadInput


def read_pts(path: Path) -> np.ndarray:
    """(68, 2) float32 points, converted from the file's 1-based pixels to 0-based."""
    path = Path(path)
    lines = path.read_text().splitlines()
    try:
        start = lines.index("{") + 1
        end = lines.index("}", start)
        points = np.array([[float(v) for v in line.split()] for line in lines[start:end]])
    except (ValueError, IndexError) as exc:
        raise BadInput(f"{path}: not an iBUG .pts file ({exc})") from exc
    if points.shape != (68, 2):
        raise BadInput(f"{path}: expected 68 points of x y, got {points.shape}")
    return (points - 1.0).astype(np.float32)
