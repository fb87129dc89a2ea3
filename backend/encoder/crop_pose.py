"""The head pose as the encoder predicts it: relative to its crop, so one network serves any
footage size, crop placement and focal length.

Parametrisation (docs/encoder.md), for a crop camera K_c (crop_intrinsics) of size S:
- rotation: R_crop = R_ray^T R, R the head -> camera rotation and R_ray the rotation taking
  the optical axis to the ray through the crop centre (a face off the image centre is seen
  obliquely; R_crop is what the crop shows). Predicted as 6 numbers (two columns,
  Gram-Schmidt: continuous, unlike Euler angles or quaternions).
- position: the face centre's projection in the crop, (u, v) in [-1, 1] at the crop edges.
- scale: s = log(f_c H / (z S)), the face height H (metres) projected at the face centre's
  depth z, as a fraction of the crop (log: depth errors are relative).
Shapes: leading dimensions (...) broadcast; rotations (..., 3, 3); poses (..., 4, 4) head
space -> camera space (OpenCV axes, metres); intrinsics (..., 3, 3) pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rotation_from_6d(six: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3, 3) rotation whose first two columns are the Gram-Schmidt of the
    two 3-vectors (Zhou et al. 2019)."""
    a, b = six[..., :3], six[..., 3:]
    x = F.normalize(a, dim=-1, eps=1e-8)
    y = F.normalize(b - (x * b).sum(-1, keepdim=True) * x, dim=-1, eps=1e-8)
    z = torch.cross(x, y, dim=-1)
    return torch.stack([x, y, z], dim=-1)


def rotation_to_6d(rotation: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 6), the inverse of rotation_from_6d on rotations."""
    return torch.cat([rotation[..., :, 0], rotation[..., :, 1]], dim=-1)


def ray_rotation(intrinsics: torch.Tensor, size: int) -> torch.Tensor:
    """(..., 3, 3) the smallest rotation taking +Z to the ray through the crop centre."""
    centre = torch.full((*intrinsics.shape[:-2], 3), (size - 1) / 2, dtype=intrinsics.dtype,
                        device=intrinsics.device)
    centre[..., 2] = 1.0
    ray = F.normalize(torch.linalg.solve(intrinsics, centre[..., None])[..., 0], dim=-1)
    z = torch.zeros_like(ray)
    z[..., 2] = 1.0
    axis = torch.cross(z, ray, dim=-1)
    sin = axis.norm(dim=-1, keepdim=True)
    cos = ray[..., 2:3]
    k = axis / sin.clamp(min=1e-12)
    skew = torch.zeros(*k.shape[:-1], 3, 3, dtype=k.dtype, device=k.device)
    skew[..., 0, 1], skew[..., 0, 2] = -k[..., 2], k[..., 1]
    skew[..., 1, 0], skew[..., 1, 2] = k[..., 2], -k[..., 0]
    skew[..., 2, 0], skew[..., 2, 1] = -k[..., 1], k[..., 0]
    eye = torch.eye(3, dtype=k.dtype, device=k.device).expand_as(skew)
    # Rodrigues; sin = 0 (ray on the axis) gives the identity.
    return eye + sin[..., None] * skew + (1 - cos[..., None]) * skew @ skew


def pose_to_crop(pose: torch.Tensor, intrinsics: torch.Tensor, size: int, face_centre: torch.Tensor,
                 face_height: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Crop-relative (R_crop (..., 3, 3), uv (..., 2), s (...,)) of head -> camera poses seen by
    crop cameras; face_centre (3,) head space metres, face_height metres."""
    rotation, translation = pose[..., :3, :3], pose[..., :3, 3]
    centre_cam = (rotation @ face_centre[..., None])[..., 0] + translation
    pixel = (intrinsics @ centre_cam[..., None])[..., 0]
    pixel = pixel[..., :2] / pixel[..., 2:3]
    half = size / 2
    uv = (pixel - (size - 1) / 2) / half
    focal = intrinsics[..., 0, 0]
    s = torch.log(focal * face_height / (centre_cam[..., 2] * size))
    return ray_rotation(intrinsics, size).transpose(-1, -2) @ rotation, uv, s


def pose_from_crop(rotation_crop: torch.Tensor, uv: torch.Tensor, s: torch.Tensor,
                   intrinsics: torch.Tensor, size: int, face_centre: torch.Tensor,
                   face_height: float) -> torch.Tensor:
    """(..., 4, 4) head -> camera poses from the crop-relative parameters (pose_to_crop's
    inverse) and the crop cameras' intrinsics."""
    focal = intrinsics[..., 0, 0]
    depth = focal * face_height / (size * torch.exp(s))
    pixel = uv * (size / 2) + (size - 1) / 2
    homogeneous = torch.cat([pixel, torch.ones_like(pixel[..., :1])], dim=-1)
    ray = torch.linalg.solve(intrinsics, homogeneous[..., None])[..., 0]
    centre_cam = ray / ray[..., 2:3] * depth[..., None]
    rotation = ray_rotation(intrinsics, size) @ rotation_crop
    translation = centre_cam - (rotation @ face_centre[..., None])[..., 0]
    pose = torch.zeros(*rotation.shape[:-2], 4, 4, dtype=rotation.dtype, device=rotation.device)
    pose[..., :3, :3] = rotation
    pose[..., :3, 3] = translation
    pose[..., 3, 3] = 1.0
    return pose
