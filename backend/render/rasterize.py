"""Triangle rasterization in plain torch: which triangle covers each pixel, and where.

Pixel (x, y) has its centre at integer coordinates (DESIGN.md conventions). The rasterizer is
not differentiable (like nvdiffrast's `rasterize`); `barycentrics` recomputes the weights of
each covered pixel from the projected vertices, so everything downstream is differentiable in
vertex positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Triangles are rasterized in groups of similar screen size; each group tests a square of
# candidate pixels per triangle, so memory is (triangles in group) x side^2.
_GROUP_SIDES = (2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
_MAX_CANDIDATES = 8_000_000


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
    """Z-buffered coverage of triangles in screen space.

    screen: (B, V, 3) pixel x, pixel y, depth (as returned by `project`; for UV-space
            rasterization pass any constant positive depth).
    faces:  (T, 3) int64 vertex indices.
    Triangles with a vertex at depth <= `near` (behind the camera) or with NaN coordinates
    are skipped; degenerate (zero-area) triangles cover nothing. With `cull_backfaces`,
    triangles whose projected winding is clockwise in the image (y down), i.e. that face away
    from the camera for counter-clockwise front faces, are skipped.
    """
    if screen.dim() != 3 or screen.shape[-1] != 3:
        raise ValueError(f"screen must be (B, V, 3), got {tuple(screen.shape)}")
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    batch = screen.shape[0]
    device = screen.device
    triangle = torch.full((batch, height, width), -1, dtype=torch.int64, device=device)
    depth = torch.full((batch, height, width), float("inf"), dtype=torch.float32, device=device)
    faces = faces.to(device=device, dtype=torch.int64)
    with torch.no_grad():
        for b in range(batch):
            _rasterize_one(screen[b].float(), faces, height, width, near, cull_backfaces,
                           triangle[b], depth[b])
    return Fragments(triangle=triangle, depth=depth)


def _rasterize_one(
    screen: torch.Tensor,
    faces: torch.Tensor,
    height: int,
    width: int,
    near: float,
    cull_backfaces: bool,
    out_triangle: torch.Tensor,
    out_depth: torch.Tensor,
) -> None:
    tri = screen[faces]  # (T, 3, 3)
    x, y, z = tri[..., 0], tri[..., 1], tri[..., 2]
    area = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (x[:, 2] - x[:, 0]) * (y[:, 1] - y[:, 0])
    valid = torch.isfinite(tri).all(dim=(1, 2)) & (z > near).all(dim=1) & (area.abs() > 1e-12)
    if cull_backfaces:
        valid &= area > 0
    x0 = torch.ceil(x.amin(1)).clamp(0, width)
    x1 = torch.floor(x.amax(1)).clamp(-1, width - 1)
    y0 = torch.ceil(y.amin(1)).clamp(0, height)
    y1 = torch.floor(y.amax(1)).clamp(-1, height - 1)
    valid &= (x1 >= x0) & (y1 >= y0)
    ids = torch.nonzero(valid).squeeze(1)
    if ids.numel() == 0:
        return
    side = torch.maximum(x1[ids] - x0[ids], y1[ids] - y0[ids]) + 1
    best_depth = out_depth.view(-1)
    best_tri = out_triangle.view(-1)
    lower = 0.0
    for group_side in _GROUP_SIDES:
        members = ids[(side > lower) & (side <= group_side)]
        lower = group_side
        chunk = max(1, _MAX_CANDIDATES // (group_side * group_side))
        for start in range(0, members.numel(), chunk):
            _cover(members[start:start + chunk], group_side, x, y, z, x0, y0, x1, y1, area,
                   width, best_depth, best_tri)


def _cover(
    ids: torch.Tensor, side: int, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor,
    x0: torch.Tensor, y0: torch.Tensor, x1: torch.Tensor, y1: torch.Tensor, area: torch.Tensor,
    width: int, best_depth: torch.Tensor, best_tri: torch.Tensor,
) -> None:
    """Depth-test the candidate pixels of triangles `ids` (bounding boxes at most side^2)."""
    offsets = torch.arange(side, device=x.device, dtype=torch.float32)
    px = (x0[ids, None, None] + offsets[None, None, :]).expand(-1, side, side)
    py = (y0[ids, None, None] + offsets[None, :, None]).expand(-1, side, side)
    inside_box = (px <= x1[ids, None, None]) & (py <= y1[ids, None, None])
    xs, ys = x[ids][:, :, None, None], y[ids][:, :, None, None]
    # Edge functions divided by the signed area: screen-space barycentrics.
    a = area[ids][:, None, None]
    w0 = ((xs[:, 1] - px) * (ys[:, 2] - py) - (xs[:, 2] - px) * (ys[:, 1] - py)) / a
    w1 = ((xs[:, 2] - px) * (ys[:, 0] - py) - (xs[:, 0] - px) * (ys[:, 2] - py)) / a
    w2 = 1.0 - w0 - w1
    inside = inside_box & (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
    zs = z[ids][:, :, None, None]
    # Perspective-correct depth: 1/z is linear in screen space.
    inv_z = w0 / zs[:, 0] + w1 / zs[:, 1] + w2 / zs[:, 2]
    sel = torch.nonzero(inside, as_tuple=True)
    if sel[0].numel() == 0:
        return
    pixel = (py[sel] * width + px[sel]).long()
    frag_depth = 1.0 / inv_z[sel]
    frag_tri = ids[sel[0]]
    depth_before = best_depth[pixel]
    best_depth.scatter_reduce_(0, pixel, frag_depth, reduce="amin")
    depth_after = best_depth[pixel]
    # A pixel won by a nearer fragment forgets the triangle of an earlier group.
    best_tri[pixel[depth_after < depth_before]] = -1
    # Ties (shared edges at equal depth): the larger triangle id wins, deterministically.
    candidate = torch.where(frag_depth <= depth_after, frag_tri, torch.full_like(frag_tri, -1))
    best_tri.scatter_reduce_(0, pixel, candidate, reduce="amax")


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
    weights = perspective / perspective.sum(-1, keepdim=True)
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
