"""The pinhole camera both sides of the process boundary share (numpy; the torch renderer's
`render.rasterize.project` is the differentiable twin).

Conventions (DESIGN.md): OpenCV camera axes (+X right, +Y down, +Z forward); pixel
coordinates 0-based with pixel centres at integers; poses (..., 4, 4) map head space (metres)
to camera space.
"""

from __future__ import annotations

import numpy as np


def centred_intrinsics(focal_px: float, width: int, height: int) -> np.ndarray:
    """(3, 3) float32 intrinsics with square pixels and the principal point at the image
    centre, ((width - 1) / 2, (height - 1) / 2) in 0-based pixel coordinates."""
    return np.array([[focal_px, 0.0, (width - 1) / 2], [0.0, focal_px, (height - 1) / 2],
                     [0.0, 0.0, 1.0]], np.float32)


def head_to_camera(points: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """Camera-space points (..., N, 3) of head-space points (..., N, 3) under poses
    (..., 4, 4) (leading dimensions broadcast)."""
    pose = np.asarray(pose)
    return np.einsum("...ij,...nj->...ni", pose[..., :3, :3], points) + pose[..., None, :3, 3]


def project_points(points: np.ndarray, pose: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Pixel coordinates (..., N, 2) of head-space points (..., N, 3) under poses (..., 4, 4)
    and intrinsics (3, 3) or one per pose (..., 3, 3)."""
    camera = head_to_camera(points, pose)
    pixels = camera @ np.swapaxes(np.asarray(intrinsics), -1, -2)
    return pixels[..., :2] / pixels[..., 2:3]


def pose_matrix(rotation: np.ndarray, translation: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """(..., 4, 4) rigid poses (float32 unless `dtype` says otherwise) from rotations
    (..., 3, 3) and translations (..., 3)."""
    rotation = np.asarray(rotation)
    pose = np.zeros((*rotation.shape[:-2], 4, 4), dtype)
    pose[..., :3, :3], pose[..., :3, 3], pose[..., 3, 3] = rotation, translation, 1.0
    return pose
