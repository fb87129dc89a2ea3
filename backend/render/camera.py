"""The pinhole camera in torch, differentiable: the twin of `formats/camera.py` (numpy) for
code inside the PyTorch graph. `rasterize.project` projects the camera-space points.

Conventions (DESIGN.md): OpenCV camera axes (+X right, +Y down, +Z forward); pixel
coordinates 0-based with pixel centres at integers; poses (..., 4, 4) map head space (metres)
to camera space.
"""

from __future__ import annotations

import torch

from ..formats.camera import centred_intrinsics as centred_intrinsics_numpy


def head_to_camera(points: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
    """Camera-space points (..., N, 3) of head-space points (..., N, 3) under poses
    (..., 4, 4) (leading dimensions broadcast)."""
    return points @ pose[..., :3, :3].transpose(-1, -2) + pose[..., None, :3, 3]


def pose_matrix(rotation: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """(..., 4, 4) rigid poses from rotations (..., 3, 3) and translations (..., 3),
    differentiable in both."""
    top = torch.cat([rotation, translation[..., None]], dim=-1)
    bottom = torch.zeros_like(top[..., :1, :])
    bottom[..., 0, 3] = 1.0
    return torch.cat([top, bottom], dim=-2)


def centred_intrinsics(focal_px: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """(3, 3) intrinsics of `formats.camera.centred_intrinsics` (square pixels, principal
    point at the image centre) with the focal length (pixels, a 0-d tensor) differentiable."""
    # f * diag(1, 1, 0) + the focal-free matrix: the same numbers as the numpy twin.
    without_focal = torch.as_tensor(centred_intrinsics_numpy(0.0, width, height), device=focal_px.device)
    focal_part = torch.diag(torch.tensor([1.0, 1.0, 0.0], device=focal_px.device))
    return without_focal + focal_px.to(without_focal.dtype) * focal_part
