"""MediaPipe's face mesh mirrored: which of its 478 points each point becomes in the mirrored
face, and the mirror-averaged detection built on it.

MediaPipe's points are not mirror-symmetric: on the annotated photos its pass on the mirrored
photo, brought back, is 0.045 inter-ocular distances from the annotations against the direct
pass's 0.035, and its offsets follow the light and the side the head turns to. Averaging the
direct pass with the mirror pass brought back cancels what is antisymmetric in those errors,
while a real asymmetric expression (a smirk), mirrored and brought back, stays where it was.

The averaging happens in MediaPipe's own topology (478 points), where a point and its mirror
point are one landmark of the mesh on the two sides: the iBUG-68 table then picks from the
averaged mesh exactly as it picked from a single pass, so its convention (which also chose some
points asymmetrically: iBUG 36 is MediaPipe 7, 45 is 263, the mirror of 33) and the heads'
landmark embeddings made with it stay valid. (Averaging in iBUG-68 order instead moved 26 of
the 68 points onto the mean of two different mesh points: docs/landmarks.md.)

The table (`mediapipe_mirror.json`) is derived by `python -m backend derive-mediapipe-mirror`:
MediaPipe on each annotated photo and on its mirror image, the mirror pass reflected back, and
the one-to-one assignment (Hungarian) of direct to mirrored points that minimises their summed
eye-distance-normalised distance over the photos, each counted facing both ways. Derivation
refuses a table that is not an involution; tests also check that it maps the mesh's
tessellation onto itself but for the tessellation's own asymmetric diagonals.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

MIRROR_TABLE_PATH = Path(__file__).with_name("mediapipe_mirror.json")
MESH_POINTS = 478
# The mesh's outer eye corners (image left and right on an upright face), for a face's scale.
EYE_CORNERS = (33, 263)
# Two passes whose points are further apart than this (mean distance over the eye-corner
# distance) found different faces: the direct pass is kept alone. One face's two passes differ
# by about 0.03.
SAME_FACE = 0.25


def is_mirror_table(table: np.ndarray) -> bool:
    """Whether `table` pairs the mesh's points: 478 indices, mirroring twice gives each back."""
    return table.shape == (MESH_POINTS,) and bool((table[table] == np.arange(MESH_POINTS)).all())


def eye_distance(points: np.ndarray) -> float:
    """The face's scale in pixels, from (478, 2) points: the outer eye corners' distance (at
    least a pixel, so that dividing by it is safe)."""
    return max(float(np.linalg.norm(points[EYE_CORNERS[0]] - points[EYE_CORNERS[1]])), 1.0)


def load_mirror_table(path: Path = MIRROR_TABLE_PATH) -> np.ndarray:
    """(478,) int64: table[i] is the point that point i becomes in the mirrored face."""
    table = np.array(json.loads(Path(path).read_text())["mirror"], np.int64)
    if not is_mirror_table(table):
        raise ValueError(f"{path}: not a mirror table of {MESH_POINTS} points (an involution)")
    return table


def bring_back(mirror_pass: np.ndarray, width: int, table: np.ndarray) -> np.ndarray:
    """(478, 2) points found on the mirrored image (pixels, centres at integers) of an image
    `width` pixels wide -> where that pass puts each point of the face in the image itself."""
    back = np.asarray(mirror_pass, np.float64)[table]  # indexing by an array copies
    back[:, 0] = (width - 1) - back[:, 0]
    return back


def mirror_average(direct: np.ndarray, mirror_pass: np.ndarray | None, width: int,
                   table: np.ndarray) -> np.ndarray:
    """(478, 2) direct-pass points, averaged with the mirror pass brought back when it found
    the same face (else the direct pass alone); pixels, float32."""
    if mirror_pass is None:
        return np.asarray(direct, np.float32)
    back = bring_back(mirror_pass, width, table)
    if np.linalg.norm(back - direct, axis=1).mean() > SAME_FACE * eye_distance(direct):
        return np.asarray(direct, np.float32)
    return ((direct + back) / 2).astype(np.float32)


def derive_mirror_table(images: list[np.ndarray]) -> tuple[np.ndarray, int]:
    """The mirror table from MediaPipe's passes on `images` (H, W, 3) uint8 RGB and on their
    mirror images; returns (table, images with a face in both passes).

    cost[i, j]: how far point i of the direct pass lies from point j of the mirror pass
    reflected back (in eye-corner distances, summed over the images). Each image counts facing
    both ways (cost plus its transpose: the direct pass on the mirror image is the mirror pass),
    so the assignment does not favour one side of the face."""
    from scipy.optimize import linear_sum_assignment

    from .mediapipe_detector import MediaPipeMesh

    identity = np.arange(MESH_POINTS)
    cost, used = np.zeros((MESH_POINTS, MESH_POINTS)), 0
    direct_mesh = MediaPipeMesh(video=False)
    try:
        mirror_mesh = MediaPipeMesh(video=False)
        try:
            for image in images:
                direct = direct_mesh.points(image)
                mirrored = mirror_mesh.points(np.ascontiguousarray(image[:, ::-1]))
                if direct is None or mirrored is None:
                    continue
                back = bring_back(mirrored, image.shape[1], identity)  # reflected, not re-indexed
                cost += np.linalg.norm(direct[:, None] - back[None], axis=-1) / eye_distance(direct)
                used += 1
        finally:
            mirror_mesh.close()
    finally:
        direct_mesh.close()
    if used < 2:
        raise RuntimeError(f"a face was found in both passes of {used} images: need at least two")
    _, table = linear_sum_assignment(cost + cost.T)
    return table.astype(np.int64), used


def derive_from_photos(directory: Path) -> dict:
    """The table as written to JSON, from the annotated photos in `directory`."""
    from PIL import Image

    from .mediapipe_mapping import annotated_photos

    paths = [image for image, _ in annotated_photos(directory)]
    table, used = derive_mirror_table([np.asarray(Image.open(path).convert("RGB")) for path in paths])
    if not is_mirror_table(table):
        raise RuntimeError("the derived mirror assignment is not an involution: more photos are needed")
    return {"mirror": table.tolist(), "photos_used": used, "derived_from": [path.name for path in paths],
            "procedure": "backend/landmarks/mediapipe_mirror.py"}


def write_mirror_table(table: dict, path: Path) -> None:
    """Write derive_from_photos's table as JSON (the committed one is MIRROR_TABLE_PATH)."""
    Path(path).write_text(json.dumps(table) + "\n")
