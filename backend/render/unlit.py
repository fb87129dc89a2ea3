"""Unlit textured rendering: posed meshes coloured by a texture lookup alone.

For textures that already hold the light: a decoded view-dependent texture (the light is
baked in), or a clip's footage unwrapped into UV space and averaged (the clip's own light).
Shading them again would count the light twice.
"""

from __future__ import annotations

import torch

from .rasterize import Fragments, barycentrics, interpolate_corners, project, rasterize
from .texture import sample


def render_unlit(vertices: torch.Tensor, faces: torch.Tensor, uv: torch.Tensor, uv_faces: torch.Tensor,
                 texture: torch.Tensor, intrinsics: torch.Tensor, height: int, width: int,
                 origin: tuple[int, int] = (0, 0)) -> tuple[torch.Tensor, Fragments]:
    """Image of posed meshes whose colour is their texture, and the fragments.

    vertices: (B, V, 3) camera space (OpenCV axes, metres); faces, uv_faces: (T, 3); uv: (U, 2)
    in [0, 1], origin bottom-left; texture: (C, S, S) shared or (B, C, S, S) one per image, any
    channels and units (colour, a coverage mask); intrinsics: (3, 3) or (B, 3, 3) pixels.
    origin (x0, y0) and height x width pick a window of the image (pixel x0 + i of the full
    image is column i): only the window is rasterized, so a crop costs in proportion to its
    size. Returns image (B, height, width, C), zero where no triangle covers the pixel, and
    fragments of the window.
    """
    screen = project(vertices, intrinsics)
    if origin != (0, 0):
        screen = screen - torch.tensor([origin[0], origin[1], 0.0], dtype=screen.dtype, device=screen.device)
    fragments = rasterize(screen, faces, height, width)
    weights = barycentrics(screen, faces, fragments)
    # UVs are indexed per triangle corner (uv_faces), not per vertex.
    corner_uv = uv.to(vertices.device)[uv_faces.to(vertices.device, torch.int64)]  # (T, 3, 2)
    pixel_uv = interpolate_corners(corner_uv, fragments, weights)
    image = sample(texture.to(vertices.device), pixel_uv) * fragments.mask.unsqueeze(-1)
    return image, fragments
