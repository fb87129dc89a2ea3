"""Rotations as axis-angle vectors (differentiable, safe at zero angle)."""

from __future__ import annotations

import torch


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: (..., 3) axis * angle (radians) -> (..., 3, 3) rotation matrices."""
    theta2 = (axis_angle**2).sum(-1, keepdim=True)[..., None]  # (..., 1, 1)
    x, y, z = axis_angle.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).view(*axis_angle.shape[:-1], 3, 3)
    theta = theta2.clamp(min=1e-12).sqrt()
    small = theta2 < 1e-8
    # Taylor expansions near zero keep gradients finite.
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2.clamp(min=1e-12))
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device).expand_as(k)
    return eye + a * k + b * (k @ k)
