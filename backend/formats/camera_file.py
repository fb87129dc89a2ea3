"""The per-frame camera file of DESIGN.md, used for baking and Blender-side renders:

    {"width": W, "height": H, "intrinsics": 3x3,
     "frames": {"<source frame index>": 4x4 head space -> camera (OpenCV axes)}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .atomic import atomic_file
from .errors import BadInput


@dataclass(frozen=True)
class CameraFile:
    width: int
    height: int
    intrinsics: np.ndarray  # (3, 3) float64, pixels
    poses: dict[int, np.ndarray]  # source frame index -> (4, 4) float64 head space -> camera

    def save(self, path: Path) -> Path:
        document = {"width": self.width, "height": self.height,
                    "intrinsics": np.asarray(self.intrinsics, float).tolist(),
                    "frames": {str(i): np.asarray(p, float).tolist() for i, p in self.poses.items()}}
        with atomic_file(Path(path)) as tmp:
            tmp.write_text(json.dumps(document) + "\n")
        return Path(path)


def load_camera_file(path: Path) -> CameraFile:
    """Read and check a camera file; BadInput naming the file and the field it refuses."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BadInput(f"camera file {path} cannot be read as JSON ({exc})") from exc

    def fail(field: str, problem: str) -> BadInput:
        return BadInput(f"camera file {path}: field '{field}' {problem}")

    if not isinstance(document, dict):
        raise fail("(top level)", "must be an object")
    for field in ("width", "height"):
        value = document.get(field)
        # JSON true/false load as bool, which Python counts as int.
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise fail(field, "must be a positive integer")
    try:
        intrinsics = np.array(document.get("intrinsics"), float)
    except (TypeError, ValueError) as exc:
        raise fail("intrinsics", "must be a 3x3 matrix of numbers") from exc
    if intrinsics.shape != (3, 3) or not np.isfinite(intrinsics).all():
        raise fail("intrinsics", f"must be a finite 3x3 matrix, got shape {intrinsics.shape}")
    frames = document.get("frames")
    if not isinstance(frames, dict) or not frames:
        raise fail("frames", "must map source frame indices to 4x4 poses")
    poses: dict[int, np.ndarray] = {}
    for key, value in frames.items():
        try:
            index, pose = int(key), np.array(value, float)
        except (TypeError, ValueError) as exc:
            raise fail(f"frames.{key}", "must be a 4x4 pose under an integer frame index") from exc
        if index < 0 or pose.shape != (4, 4) or not np.isfinite(pose).all():
            raise fail(f"frames.{key}", "must be a finite 4x4 pose under a frame index >= 0")
        poses[index] = pose
    return CameraFile(document["width"], document["height"], intrinsics, poses)
