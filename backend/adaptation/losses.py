"""The adaptation's losses (DESIGN.md, method step 3), each a pure function of tensors.

Robust penalty: Charbonnier, rho(r) = sqrt(1 + (r / scale)^2) - 1, quadratic below `scale` and
linear above, so a detector's outlier, a specular highlight or an occluding hand moves the
encoder by a bounded gradient. Every loss is a weighted mean (zero when nothing is
visible or confident), so weights mean the same on any clip or batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..render.rasterize import project

# Charbonnier scales: landmark distances as a fraction of the crop side, colour differences in
# [0, 1] units (about 5 and 8 of 255).
LANDMARK_SCALE = 0.01
COLOUR_SCALE = 0.03


def charbonnier(residual: torch.Tensor, scale: float) -> torch.Tensor:
    """Elementwise robust penalty of residuals (any shape), in units of scale^0 (about
    (r / scale)^2 / 2 for small r)."""
    return torch.sqrt(1 + (residual / scale) ** 2) - 1


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return (values * weights).sum() / weights.sum().clamp(min=1e-8)


def landmark_loss(camera_points: torch.Tensor, crop_intrinsics: torch.Tensor, detected: torch.Tensor,
                  confidence: torch.Tensor, crop_size: int) -> torch.Tensor:
    """L_L: the model's landmarks projected into the crop against the detections.

    camera_points (B, 68, 3) the landmark vertices in camera space (metres); crop_intrinsics
    (B, 3, 3); detected (B, 68, 2) crop pixels; confidence (B, 68) in [0, 1] (0: missing)."""
    projected = project(camera_points, crop_intrinsics)[..., :2]
    distance = (projected - detected).norm(dim=-1) / crop_size
    return _weighted_mean(charbonnier(distance, LANDMARK_SCALE), confidence)


def texture_consistency_loss(texture_a: torch.Tensor, visible_a: torch.Tensor, texture_b: torch.Tensor,
                             visible_b: torch.Tensor) -> torch.Tensor:
    """L_T: two frames unwrapped into UV space (B, 3, T, T) with visibility (B, T, T) must
    agree on the texels both see."""
    both = (visible_a & visible_b).to(texture_a.dtype)
    return _weighted_mean(charbonnier(texture_a - texture_b, COLOUR_SCALE).sum(1), both)


def appearance_loss(unwrapped: torch.Tensor, visible: torch.Tensor, decoded: torch.Tensor,
                    colour: ColourTransform, shading_window: int, shading_weight: float) -> torch.Tensor:
    """L_A: the frame's texture (B, 3, T, T), through the clip's colour transform, against the
    DAM's texture decoded for that view (B, 3, T, T), on visible texels (B, T, T).

    The DAM's texture carries the lab's light; a clip's light (a coloured key, a window) differs
    by a smooth field that no global colour transform removes, and matching it would pull the
    pose and expression toward the lab's shading. So the difference is compared after removing
    its local mean over `shading_window` texels (what remains: edges of lips, eyes, brows,
    mouth interior); the whole difference counts with `shading_weight` (0-1) beside it.
    shading_window 0: the whole difference alone."""
    difference = colour(unwrapped) - decoded
    weight = visible.to(unwrapped.dtype)
    if shading_window <= 1:
        return _weighted_mean(charbonnier(difference, COLOUR_SCALE).sum(1), weight)
    detail = difference - masked_blur(difference, weight, shading_window)
    return (_weighted_mean(charbonnier(detail, COLOUR_SCALE).sum(1), weight)
            + shading_weight * _weighted_mean(charbonnier(difference, COLOUR_SCALE).sum(1), weight))


def masked_blur(values: torch.Tensor, weight: torch.Tensor, window: int) -> torch.Tensor:
    """Box average of values (B, C, T, T) over the texels where weight (B, T, T) is set."""
    w = weight[:, None]
    pad = window // 2
    total = F.avg_pool2d(values * w, window, 1, pad, count_include_pad=True)
    count = F.avg_pool2d(w, window, 1, pad, count_include_pad=True)
    return total / count.clamp(min=1e-6)


class ColourTransform(nn.Module):
    """The clip's colour: footage RGB -> the model's RGB by an affine map (3x3 matrix and an
    offset), which covers white balance, exposure and a camera's colour matrix. Starts at the
    identity."""

    def __init__(self) -> None:
        super().__init__()
        self.matrix = nn.Parameter(torch.eye(3))
        self.offset = nn.Parameter(torch.zeros(3))

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """(B, 3, ...) -> (B, 3, ...)."""
        return torch.einsum("ij,bj...->bi...", self.matrix, rgb) + self.offset.view(3, *[1] * (rgb.dim() - 2))
