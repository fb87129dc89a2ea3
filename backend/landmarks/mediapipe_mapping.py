"""Deriving the MediaPipe 478 -> iBUG-68 index table from human-annotated photos.

For each iBUG point, the MediaPipe point with the smallest mean inter-ocular-normalised
distance to the annotation over all photos is chosen. Its confidence prior is
min(1, median error / its error): points the annotation convention places differently
(the jaw contour) weigh less in a fit. Leave-one-photo-out NME measures the table honestly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .annotations import read_pts
from .nme import inter_ocular, nme


def annotated_photos(directory: Path) -> list[tuple[Path, Path]]:
    """(image, .pts) pairs in `directory`."""
    pairs = []
    for pts in sorted(Path(directory).glob("*.pts")):
        images = [p for p in pts.parent.glob(pts.stem + ".*") if p.suffix != ".pts"]
        if images:
            pairs.append((images[0], pts))
    return pairs


def choose_indices(mesh_points: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """mesh_points (N, 478, 2), truth (N, 68, 2) -> ((68,) indices, (68,) mean normalised error)."""
    iod = inter_ocular(truth)[:, None, None]
    dist = np.linalg.norm(mesh_points[:, None, :, :] - truth[:, :, None, :], axis=-1) / iod
    mean = dist.mean(0)  # (68, 478)
    index = mean.argmin(1)
    return index, mean[np.arange(68), index]


def derive_mapping(directory: Path) -> dict:
    """The mapping table (as written to JSON) and its leave-one-out NME."""
    from PIL import Image

    from .mediapipe_detector import MediaPipeMesh

    mesh = MediaPipeMesh(video=False)
    names, points, truths = [], [], []
    for image_path, pts_path in annotated_photos(directory):
        image = np.asarray(Image.open(image_path).convert("RGB"))
        found = mesh.points(image)
        if found is None:
            continue
        names.append(image_path.name)
        points.append(found)
        truths.append(read_pts(pts_path))
    mesh.close()
    if len(names) < 2:
        raise RuntimeError(f"need at least two photos with a detected face in {directory}")
    mesh_points, truth = np.stack(points), np.stack(truths)
    index, error = choose_indices(mesh_points, truth)
    confidence = np.clip(np.median(error) / error, 0.0, 1.0)
    loo = []
    for held in range(len(names)):
        rest = [i for i in range(len(names)) if i != held]
        idx, _ = choose_indices(mesh_points[rest], truth[rest])
        loo.append(float(nme(mesh_points[held][idx], truth[held])))
    return {
        "index": index.tolist(),
        "confidence": np.round(confidence, 3).tolist(),
        "derived_from": names,
        "leave_one_out_nme": dict(zip(names, np.round(loo, 4).tolist(), strict=False)),
        "procedure": "backend/landmarks/mediapipe_mapping.py",
    }


def write_mapping(table: dict, path: Path) -> None:
    Path(path).write_text(json.dumps(table, indent=1) + "\n")
