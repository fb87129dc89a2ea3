"""Unwrapping footage into UV space through a posed mesh, with visibility.

`make_atlas` rasterizes a topology's UV layout once (which triangle and barycentrics each
texel has); `unwrap` then maps every texel to its surface point, projects it into the image
and samples the image there. Differentiable in the vertex positions (through the projection
and bilinear sampling) and in the image; the visibility mask is not.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .rasterize import project, rasterize
from .texture import rasterize_uv

# A texel is occluded when the z-buffer at its pixel is nearer than its own depth by more than
# this fraction of the depth (0.5%: 3 mm at 0.6 m), which absorbs z-buffer sampling error
# between neighbouring triangles of the same surface.
OCCLUSION_TOLERANCE = 0.005


@dataclass
class UVAtlas:
    """A topology's UV rasterization at size x size texels (computed once, no gradient).

    texel_index: (N,) flat indices of the N covered texels; corners: (N, 3) vertex indices of
    each texel's triangle; weights: (N, 3) its barycentrics; triangle: (N,) triangle ids.
    """

    size: int
    texel_index: torch.Tensor
    triangle: torch.Tensor
    corners: torch.Tensor
    weights: torch.Tensor

    @property
    def mask(self) -> torch.Tensor:
        """(S, S) bool, texels on the layout."""
        out = torch.zeros(self.size * self.size, dtype=torch.bool, device=self.texel_index.device)
        out[self.texel_index] = True
        return out.view(self.size, self.size)

    def texels_of(self, image: torch.Tensor) -> torch.Tensor:
        """(C, N) an image laid out in this UV space (C, H, W), e.g. an albedo, resampled at
        the atlas's texels (area-averaged when larger than the atlas)."""
        mode = "area" if image.shape[-1] > self.size else "bilinear"
        resized = F.interpolate(image[None].float(), size=(self.size, self.size), mode=mode)[0]
        return resized.reshape(image.shape[0], -1)[:, self.texel_index.to(resized.device)]

    def restricted(self, triangle_mask: torch.Tensor) -> UVAtlas:
        """The texels on triangles where triangle_mask (T,) bool is set (e.g. the face region:
        unwrapping texels nobody reads only costs time)."""
        keep = triangle_mask.to(self.triangle.device)[self.triangle]
        return UVAtlas(self.size, self.texel_index[keep], self.triangle[keep], self.corners[keep],
                       self.weights[keep])

    def to(self, device: torch.device | str) -> UVAtlas:
        return UVAtlas(self.size, *(t.to(device) for t in (self.texel_index, self.triangle,
                                                              self.corners, self.weights)))


def make_atlas(uv: torch.Tensor, uv_faces: torch.Tensor, faces: torch.Tensor, size: int) -> UVAtlas:
    """uv (U, 2) in [0, 1] (origin bottom-left), uv_faces and faces (T, 3) -> UVAtlas."""
    fragments, weights = rasterize_uv(uv, uv_faces, size)
    flat_triangle = fragments.triangle.view(-1)
    texel_index = torch.nonzero(flat_triangle >= 0).squeeze(1)
    triangle = flat_triangle[texel_index]
    corners = faces.to(triangle.device, torch.int64)[triangle]
    return UVAtlas(size, texel_index, triangle, corners, weights.view(-1, 3)[texel_index].detach())


def unwrap(image: torch.Tensor, vertices: torch.Tensor, intrinsics: torch.Tensor, faces: torch.Tensor,
           atlas: UVAtlas, near: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """Footage texture of posed meshes.

    image: (B, C, H, W) or (C, H, W) (shared by the batch); vertices: (B, V, 3) camera space
    (OpenCV axes, metres); intrinsics: (3, 3) or (B, 3, 3) pixels; faces: (T, 3).
    Returns texture (B, C, S, S), zero where not visible, and visibility (B, S, S) bool: the
    texel's surface point is in front of the camera, inside the image, on a front-facing
    triangle and not occluded by the mesh itself.
    """
    if image.dim() == 3:
        image = image.unsqueeze(0).expand(vertices.shape[0], -1, -1, -1)
    batch, channels, height, width = image.shape
    if height == 0 or width == 0:
        raise ValueError("unwrap: the image is empty")
    if not torch.isfinite(vertices).all():
        raise ValueError("unwrap: vertex positions contain NaN or inf")
    # Surface point of every texel, then its pixel: perspective-correct by construction.
    corner_points = vertices[:, atlas.corners]  # (B, N, 3, 3)
    points = (corner_points * atlas.weights[None, :, :, None]).sum(2)  # (B, N, 3)
    pixels = project(points, intrinsics)  # (B, N, 3): x, y, depth
    grid = torch.stack([(pixels[..., 0] + 0.5) / width * 2 - 1,
                        (pixels[..., 1] + 0.5) / height * 2 - 1], dim=-1)
    sampled = F.grid_sample(image, grid.unsqueeze(1), mode="bilinear", padding_mode="border",
                            align_corners=False)[:, :, 0]  # (B, C, N)

    with torch.no_grad():
        visible = _visibility(vertices, faces, intrinsics, atlas, points, pixels, height, width, near)
    texture = torch.zeros(batch, channels, atlas.size * atlas.size, dtype=sampled.dtype,
                          device=sampled.device)
    texture = texture.index_copy(2, atlas.texel_index, sampled * visible[:, None])
    visibility = torch.zeros(batch, atlas.size * atlas.size, dtype=torch.bool, device=sampled.device)
    visibility[:, atlas.texel_index] = visible
    return (texture.view(batch, channels, atlas.size, atlas.size),
            visibility.view(batch, atlas.size, atlas.size))


def _visibility(vertices: torch.Tensor, faces: torch.Tensor, intrinsics: torch.Tensor,
                atlas: UVAtlas, points: torch.Tensor, pixels: torch.Tensor, height: int,
                width: int, near: float) -> torch.Tensor:
    """(B, N) bool: in front, inside the image, front-facing, not occluded."""
    x, y, depth = pixels.unbind(-1)
    inside = (depth > near) & (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)
    corners = vertices[:, atlas.corners]  # (B, N, 3, 3)
    normal = torch.cross(corners[:, :, 1] - corners[:, :, 0], corners[:, :, 2] - corners[:, :, 0],
                         dim=-1)
    front = (normal * points).sum(-1) < 0  # counter-clockwise front faces look at the camera
    screen = project(vertices, intrinsics)
    zbuffer = rasterize(screen, faces, height, width, near=near).depth  # (B, H, W)
    col = x.round().long().clamp(0, width - 1)
    row = y.round().long().clamp(0, height - 1)
    nearest = torch.gather(zbuffer.view(zbuffer.shape[0], -1), 1, row * width + col)
    unoccluded = depth <= nearest * (1 + OCCLUSION_TOLERANCE)
    return inside & front & unoccluded
