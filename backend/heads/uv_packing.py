"""Repacking a head's UV islands so the head fills the texture square.

MakeHuman's UVs lay out the whole body: cut out, the head covers under a quarter of the
square and the eyes a few texels. The largest island (the face and scalp) is scaled to the
full height on the left; the other islands keep its texel density (tiny ones, the eyes, get
`SMALL_ISLAND_BOOST` times more) and are shelf-packed into the strip on its right.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

MARGIN = 0.01  # UV units between islands (about 2.5 texels at 256^2): no bleeding
SMALL_ISLAND_FRACTION = 0.005  # islands below this share of the main island's area ...
SMALL_ISLAND_BOOST = 4.0  # ... get this much larger scale


def uv_islands(num_uv: int, uv_faces: np.ndarray) -> np.ndarray:
    """(U,) island label of every UV coordinate (connected through shared UV corners)."""
    rows = uv_faces.reshape(-1)
    cols = np.roll(uv_faces, 1, axis=1).reshape(-1)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(num_uv, num_uv))
    return connected_components(graph, directed=False)[1]


def repack_uv(uv: np.ndarray, uv_faces: np.ndarray) -> np.ndarray:
    """New UVs (U, 2) in [0, 1] with the same islands, packed as described above."""
    labels = uv_islands(len(uv), uv_faces)
    islands = [np.flatnonzero(labels == i) for i in range(labels.max() + 1)]
    lows = [uv[i].min(0) for i in islands]
    sizes = [uv[i].max(0) - uv[i].min(0) for i in islands]
    main = int(np.argmax([s[0] * s[1] for s in sizes]))
    scale = (1 - 2 * MARGIN) / sizes[main][1]
    out = np.empty_like(uv)
    out[islands[main]] = (uv[islands[main]] - lows[main]) * scale + MARGIN
    strip_left = MARGIN + sizes[main][0] * scale + MARGIN
    if strip_left > 0.9:
        raise ValueError("the main UV island is too wide to leave room for the others")
    others = [i for i in range(len(islands)) if i != main]
    main_area = sizes[main][0] * sizes[main][1]
    own = {i: scale * (SMALL_ISLAND_BOOST if sizes[i][0] * sizes[i][1] < SMALL_ISLAND_FRACTION * main_area
                       else 1.0) for i in others}
    # Shrink the small islands together until the shelves fit in the strip.
    for shrink in np.geomspace(1.0, 0.05, 60):
        placed = _shelf_pack([sizes[i] * own[i] * shrink for i in others], strip_left)
        if placed is not None:
            break
    else:
        raise ValueError("the UV islands do not fit beside the main island")
    for island, corner in zip(others, placed, strict=True):
        out[islands[island]] = (uv[islands[island]] - lows[island]) * own[island] * shrink + corner
    return out.astype(np.float32)


def _shelf_pack(sizes: list[np.ndarray], left: float) -> list[np.ndarray] | None:
    """Lower-left corners placing `sizes` on shelves in [left, 1] x [0, 1]; None if they don't fit."""
    order = sorted(range(len(sizes)), key=lambda i: -sizes[i][1])
    corners: list[np.ndarray | None] = [None] * len(sizes)
    x, y, shelf_height = left, MARGIN, 0.0
    for i in order:
        w, h = sizes[i]
        if x + w + MARGIN > 1.0:
            x, y, shelf_height = left, y + shelf_height + MARGIN, 0.0
        if x + w + MARGIN > 1.0 or y + h + MARGIN > 1.0:
            return None
        corners[i] = np.array([x, y])
        x += w + MARGIN
        shelf_height = max(shelf_height, h)
    return corners  # type: ignore[return-value]
