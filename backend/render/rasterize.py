"""Triangle rasterization in plain torch: which triangle covers each pixel, and where.

Pixel (x, y) has its centre at integer coordinates (DESIGN.md conventions). The rasterizer is
not differentiable (like nvdiffrast's `rasterize`); `barycentrics` recomputes the weights of
each covered pixel from the projected vertices, so everything downstream is differentiable in
vertex positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .warp_coverage import cover


@dataclass
class Fragments:
    """Rasterizer output for B images of H x W pixels.

    triangle: (B, H, W) int64, index into faces, -1 where no triangle covers the pixel.
    depth:    (B, H, W) float32, camera-space z of the surface (same units as the input
              depth), +inf where empty.
    """

    triangle: torch.Tensor
    depth: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """(B, H, W) bool, pixels covered by a triangle."""
        return self.triangle >= 0

    def showing(self, triangles: torch.Tensor) -> torch.Tensor:
        """(B, H, W) bool, pixels whose visible triangle is one of `triangles` ((T,) bool)."""
        return self.mask & triangles.to(self.triangle.device)[self.triangle.clamp(min=0)]


def project(points: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """Pinhole projection of camera-space points (OpenCV axes, +Z forward).

    points: (B, V, 3) camera space; intrinsics: (3, 3) or (B, 3, 3) pixels.
    Returns (B, V, 3): pixel x, pixel y, and camera-space depth z.
    """
    k = intrinsics if intrinsics.dim() == 3 else intrinsics.unsqueeze(0)
    z = points[..., 2:3]
    safe_z = torch.where(z.abs() < 1e-9, torch.full_like(z, 1e-9), z)
    xy = points[..., :2] / safe_z
    px = k[:, None, 0, 0:1] * xy[..., 0:1] + k[:, None, 0, 1:2] * xy[..., 1:2] + k[:, None, 0, 2:3]
    py = k[:, None, 1, 1:2] * xy[..., 1:2] + k[:, None, 1, 2:3]
    return torch.cat([px, py, z], dim=-1)


def rasterize(
    screen: torch.Tensor,
    faces: torch.Tensor,
    height: int,
    width: int,
    near: float = 1e-6,
    cull_backfaces: bool = False,
) -> Fragments:
    """Z-buffered coverage of triangles in screen space (not differentiable).

    screen: (B, V, 3) pixel x, pixel y, depth (as returned by `project`; for UV-space
            rasterization pass any constant positive depth).
    faces:  (T, 3) vertex indices.
    A pixel is covered when its centre lies inside or on the edge of a triangle; the nearest
    triangle wins (ties: the lower id). Triangles with a vertex at depth <= `near` (behind the
    camera) or a NaN coordinate are skipped; degenerate (zero-area) triangles cover nothing.
    With `cull_backfaces`, triangles facing away from the camera are skipped: front faces are
    counter-clockwise seen from outside (Blender's convention), which in the image (y down)
    gives a negative signed area. Depth resolution is 1 µm.
    """
    if screen.dim() != 3 or screen.shape[-1] != 3:
        raise ValueError(f"screen must be (B, V, 3), got {tuple(screen.shape)}")
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if faces.dim() != 2 or faces.shape[-1] != 3:
        raise ValueError(f"faces must be (T, 3), got {tuple(faces.shape)}")
    if faces.numel() and (faces.min() < 0 or faces.max() >= screen.shape[1]):
        raise ValueError(f"faces index vertices outside 0..{screen.shape[1] - 1}")
    triangle, depth = cover(screen, faces, height, width, near, cull_backfaces)
    return Fragments(triangle=triangle, depth=depth)


def barycentrics(screen: torch.Tensor, faces: torch.Tensor, fragments: Fragments) -> torch.Tensor:
    """Perspective-correct barycentric weights of each covered pixel, differentiable in `screen`.

    screen: (B, V, 3) pixel x, pixel y, depth; faces: (T, 3).
    Returns (B, H, W, 3); zero where no triangle covers the pixel.
    """
    batch, height, width = fragments.triangle.shape
    tri_id = fragments.triangle.clamp(min=0)
    corners = faces.to(screen.device, torch.int64)[tri_id]  # (B, H, W, 3)
    gathered = torch.gather(screen, 1, corners.view(batch, -1, 1).expand(-1, -1, 3))
    v = gathered.view(batch, height, width, 3, 3)
    ys, xs = torch.meshgrid(torch.arange(height, device=screen.device, dtype=screen.dtype),
                            torch.arange(width, device=screen.device, dtype=screen.dtype),
                            indexing="ij")
    vx, vy, vz = v[..., 0], v[..., 1], v[..., 2]
    area = (vx[..., 1] - vx[..., 0]) * (vy[..., 2] - vy[..., 0]) - (
        vx[..., 2] - vx[..., 0]) * (vy[..., 1] - vy[..., 0])
    area = torch.where(area.abs() < 1e-12, torch.full_like(area, 1e-12), area)
    w0 = ((vx[..., 1] - xs) * (vy[..., 2] - ys) - (vx[..., 2] - xs) * (vy[..., 1] - ys)) / area
    w1 = ((vx[..., 2] - xs) * (vy[..., 0] - ys) - (vx[..., 0] - xs) * (vy[..., 2] - ys)) / area
    w2 = 1.0 - w0 - w1
    screen_w = torch.stack([w0, w1, w2], dim=-1)
    perspective = screen_w / vz.clamp(min=1e-9)
    # A sliver triangle's weights, recomputed in float32, can fall outside [0, 1] and their
    # perspective sum to zero: such a pixel gets equal weights (and no gradient) rather than a
    # NaN, which would spread through every loss downstream. The division is made safe first:
    # a NaN in the branch torch.where drops still poisons the backward pass.
    total = perspective.sum(-1, keepdim=True)
    usable = total.abs() > 1e-12
    weights = perspective / torch.where(usable, total, torch.ones_like(total))
    weights = torch.where(usable, weights, torch.full_like(weights, 1 / 3))
    return weights * fragments.mask.unsqueeze(-1)


def interpolate(attributes: torch.Tensor, faces: torch.Tensor, fragments: Fragments,
                weights: torch.Tensor) -> torch.Tensor:
    """Per-pixel attribute from per-vertex attributes.

    attributes: (B, V, C) or (V, C); weights: (B, H, W, 3) from `barycentrics`.
    Returns (B, H, W, C); zero where no triangle covers the pixel.
    """
    batch, height, width = fragments.triangle.shape
    if attributes.dim() == 2:
        attributes = attributes.unsqueeze(0).expand(batch, -1, -1)
    corners = faces.to(attributes.device, torch.int64)[fragments.triangle.clamp(min=0)]
    channels = attributes.shape[-1]
    gathered = torch.gather(attributes, 1, corners.view(batch, -1, 1).expand(-1, -1, channels))
    values = gathered.view(batch, height, width, 3, channels)
    return (values * weights.unsqueeze(-1)).sum(-2)


def interpolate_corners(corner_attributes: torch.Tensor, fragments: Fragments,
                        weights: torch.Tensor) -> torch.Tensor:
    """Per-pixel attribute from per-corner attributes (T, 3, C), e.g. UVs indexed by uv_faces.

    Returns (B, H, W, C); zero where no triangle covers the pixel.
    """
    values = corner_attributes.to(weights.device)[fragments.triangle.clamp(min=0)]  # (B,H,W,3,C)
    return (values * weights.unsqueeze(-1)).sum(-2)
