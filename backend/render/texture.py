"""Texture sampling and UV-space rasterization."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .rasterize import Fragments, barycentrics, interpolate, rasterize


def uv_to_texel(uv: torch.Tensor, size: int) -> torch.Tensor:
    """UV in [0, 1] (origin bottom-left) -> texel coordinates (x right, y down, centres at ints)."""
    return torch.stack([uv[..., 0] * size - 0.5, (1.0 - uv[..., 1]) * size - 0.5], dim=-1)


def sample(texture: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear lookup, differentiable in both arguments.

    texture: (B, C, S, S) or (C, S, S); uv: (B, H, W, 2) in [0, 1], origin bottom-left (outside
    it: the border texel; a NaN or inf component is taken as 0, with no gradient).
    Returns (B, H, W, C).
    """
    if texture.dim() == 3:
        texture = texture.unsqueeze(0).expand(uv.shape[0], -1, -1, -1)
    # grid_sample's CPU backward reads outside the texture at a NaN coordinate and the process
    # dies (torch 2.13, measured): a non-finite component is taken as 0 and passes no gradient.
    uv = torch.where(torch.isfinite(uv), uv, torch.zeros_like(uv))
    grid = torch.stack([uv[..., 0] * 2 - 1, 1 - uv[..., 1] * 2], dim=-1)
    out = F.grid_sample(texture, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.permute(0, 2, 3, 1)


def rasterize_uv(uv: torch.Tensor, uv_faces: torch.Tensor, size: int) -> tuple[Fragments, torch.Tensor]:
    """Which triangle covers each texel of a size x size UV map, and its barycentrics.

    uv: (U, 2); uv_faces: (T, 3). Returns fragments (1, S, S) and weights (1, S, S, 3).
    """
    texel = uv_to_texel(uv.float(), size)
    screen = torch.cat([texel, torch.ones_like(texel[:, :1])], dim=-1).unsqueeze(0)
    fragments = rasterize(screen, uv_faces, size, size)
    return fragments, barycentrics(screen, uv_faces, fragments)


def surface_in_uv(vertices: torch.Tensor, faces: torch.Tensor, uv: torch.Tensor,
                  uv_faces: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The surface point under each texel of a size x size UV map.

    vertices (V, 3); faces, uv_faces (T, 3); uv (U, 2).
    Returns positions (S, S, 3) (zero off the layout) and triangle ids (S, S) (-1 off it).
    """
    fragments, weights = rasterize_uv(uv, uv_faces, size)
    positions = interpolate(vertices, faces, fragments, weights)
    return positions[0], fragments.triangle[0]
