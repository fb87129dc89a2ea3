"""The actor's albedo fused in UV space from frames unwrapped through the fitted head.

Each frame is unwrapped (backend/render/unwrap.py: visible texels only) and weighted per texel
by how squarely the surface faces the camera (cos^2 of the view angle: grazing texels are
smeared and mis-registered). A frame's texture is the albedo times the light; the light is one
for the clip (the camera is static, so the room's light is fixed in camera space), per colour
channel second-order spherical harmonics of the camera-space normal (a diffuse surface's light,
its self-shadowed side included), solved from the ratios of the frames' colours on texels they
share (the albedo cancels) and divided out; the albedo is then a robust weighted mean over
frames (Cauchy weights on each frame's residual, re-solved a few rounds: expressions, specular
highlights and occluders are outliers of some frames, not of all). Texels no frame saw take
their mirror texel's colour (the face's left-right symmetry) and failing that the default
albedo's, scaled to the actor's colour over the texels both have; the observed fraction is
reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..formats.head_file import HeadAsset
from ..heads.landmark_embedding import albedo_for_rendering
from ..render.brightness_match import brightness_matched
from ..render.shading import vertex_normals
from ..render.unwrap import make_atlas, unwrap

ROUNDS = 3  # light and albedo re-solved with the robust weights of the round before
ROBUST_SCALE = 0.08  # residual (colour in [0, 1]) where a frame's texel starts to count less
MIN_WEIGHT = 0.05  # texels whose summed view weight stays below this count as unseen
# Pull of the light's directional terms toward zero, relative to the data: yaw-only turning
# cannot tell a light from above from an albedo darker at the chin (docs/identity.md).
LIGHT_PRIOR = 3e-2


@dataclass
class FusedAlbedo:
    """albedo (S, S, 3) uint8, row 0 the top (v = 1); observed (S, S) bool texels some frame
    saw; observed_fraction over the layout's texels, and over the face region's;
    mirrored_fraction of the layout's texels taken from their mirror texel."""

    albedo: np.ndarray
    observed: np.ndarray
    observed_fraction: float
    observed_face_fraction: float
    mirrored_fraction: float


def fuse_albedo(head: HeadAsset, images: np.ndarray, camera_vertices: np.ndarray,
                intrinsics: np.ndarray, size: int = 1024, device: str = "cpu") -> FusedAlbedo:
    """images (F, H, W, 3) uint8 RGB; camera_vertices (F, V, 3) the head fitted to each frame in
    camera space (metres, OpenCV axes); intrinsics (3, 3) pixels."""
    dev = torch.device(device)
    faces = torch.as_tensor(head.faces, device=dev)
    atlas = make_atlas(torch.as_tensor(head.uv), torch.as_tensor(head.uv_faces),
                       torch.as_tensor(head.faces), size).to(dev)
    k = torch.as_tensor(intrinsics, dtype=torch.float32, device=dev)
    textures, weights, normals = [], [], []
    for image, vertices in zip(images, camera_vertices, strict=True):
        frame = torch.as_tensor(image, device=dev).permute(2, 0, 1).float()[None] / 255
        cam = torch.as_tensor(vertices, dtype=torch.float32, device=dev)[None]
        texture, visible = unwrap(frame, cam, k, faces, atlas)
        n = F.normalize(_texel_values(vertex_normals(cam, faces)[0], atlas), dim=-1)  # (N, 3)
        point = _texel_values(cam[0], atlas)
        facing = (-(n * F.normalize(point, dim=-1)).sum(-1)).clamp(min=0)
        flat = texture.view(3, -1)[:, atlas.texel_index].T  # (N, 3)
        textures.append(flat)
        weights.append(visible.view(-1)[atlas.texel_index].float() * facing**2)
        normals.append(n)
    colour = torch.stack(textures)  # (F, N, 3)
    view_weight = torch.stack(weights)  # (F, N)
    sh = spherical_harmonics(torch.stack(normals))  # (F, N, 9)

    robust = torch.ones_like(view_weight)
    for _ in range(ROUNDS):
        light = _fit_lights(colour, sh, view_weight * robust)
        albedo = _weighted_mean(colour / light, view_weight * robust)
        residual = (colour - albedo[None] * light).norm(dim=-1)
        robust = 1 / (1 + (residual / ROBUST_SCALE) ** 2)
    seen = (view_weight * robust).sum(0) >= MIN_WEIGHT
    albedo = albedo.clamp(0, 1)
    return _complete(head, atlas, albedo.cpu().numpy(), seen.cpu().numpy(), size)


def spherical_harmonics(normal: torch.Tensor) -> torch.Tensor:
    """(..., 9) the real spherical harmonics up to second order (unnormalised) of unit normals
    (..., 3): enough for the light a diffuse surface shows, clamped cosine included (Ramamoorthi
    and Hanrahan 2001); first order alone misses the self-shadowed side."""
    x, y, z = normal.unbind(-1)
    return torch.stack([torch.ones_like(x), x, y, z, x * y, y * z, x * z, x * x - y * y,
                        3 * z * z - 1], -1)


def _texel_values(per_vertex: torch.Tensor, atlas) -> torch.Tensor:
    """(N, C) per-vertex values (V, C) interpolated at the atlas's texels."""
    return (per_vertex[atlas.corners] * atlas.weights[..., None]).sum(1)


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(N, 3) mean over frames of values (F, N, 3) with weights (F, N)."""
    return (values * weights[..., None]).sum(0) / weights.sum(0).clamp(min=1e-8)[:, None]


def _fit_lights(colour: torch.Tensor, sh: torch.Tensor, weights: torch.Tensor,
                max_texels: int = 20000) -> torch.Tensor:
    """(F, N, 3) the light at each texel of each frame: per channel sh . l with l (9,) the
    second-order spherical-harmonic coefficients of the clip's one light (sh (F, N, 9) of the
    camera-space normals: the camera is static, so the room's light is fixed in camera space).

    The albedo is eliminated: a texel seen in frames f and g has colour_f / colour_g =
    light_f / light_g, i.e. (colour_g sh_f - colour_f sh_g) . l = 0. l minimises the weighted
    squares of that over texel pairs with the frames' mean light held at 1 (the ratios leave the
    scale free; the albedo keeps the footage's level). One light for all frames is also what
    makes it unique: lights free per frame could trade any smooth head-space shading with the
    albedo."""
    frames = colour.shape[0]
    candidates = torch.nonzero((weights > 0).sum(0) >= 2).squeeze(1)
    if frames < 2 or len(candidates) == 0:
        return torch.ones_like(colour)
    generator = torch.Generator().manual_seed(0)
    pick = candidates[torch.randperm(len(candidates), generator=generator)[:max_texels].to(candidates.device)]
    terms = sh.shape[-1]
    observed = weights > 0
    mean = (sh * observed[..., None]).sum((0, 1)).double() / observed.sum().clamp(min=1)
    light = torch.ones_like(colour)
    for c in range(3):
        normal = torch.zeros(terms, terms, dtype=torch.float64, device=colour.device)
        for f in range(frames):
            for g in range(f + 1, frames):
                pair = (weights[f, pick] * weights[g, pick]).sqrt().double()
                row = (colour[g, pick, c:c + 1] * sh[f, pick] - colour[f, pick, c:c + 1] * sh[g, pick]).double()
                normal += row.T @ (row * pair[:, None])
        # A weak pull toward an even light: directions the texel pairs leave unconstrained (a
        # clip with little turning, an unlit scene) stay flat rather than fit noise.
        flat = torch.eye(terms, dtype=torch.float64, device=colour.device)
        flat[0, 0] = 0
        solved = torch.linalg.solve(normal + LIGHT_PRIOR * normal.diagonal().mean() * flat, mean)
        coefficients = (solved / (mean @ solved)).float()
        light[..., c] = (sh @ coefficients).clamp(min=0.05)
    return light


def _complete(head: HeadAsset, atlas, albedo: np.ndarray, seen: np.ndarray, size: int) -> FusedAlbedo:
    """The fused texels, mirror texels where unseen, the default albedo (colour-matched) where
    neither; as an (S, S, 3) image."""
    from scipy.spatial import cKDTree

    corners = atlas.corners.cpu().numpy()
    weights = atlas.weights.cpu().numpy()
    position = (head.vertices[corners] * weights[..., None]).sum(1)  # (N, 3) rest shape
    tree = cKDTree(position[seen]) if seen.any() else None
    filled = albedo.copy()
    unseen = np.flatnonzero(~seen)
    from_mirror = np.zeros(len(seen), bool)
    if tree is not None and len(unseen):
        mirrored = position[unseen] * [-1.0, 1.0, 1.0]
        distance, nearest = tree.query(mirrored)
        close = distance < 0.004  # a mirror texel on the surface itself, not across a gap
        filled[unseen[close]] = albedo[seen][nearest[close]]
        from_mirror[unseen[close]] = True
    default = _default_texels(head, atlas)
    rest = ~seen & ~from_mirror
    matched = brightness_matched(*(torch.from_numpy(a) for a in (default.T, albedo.T, seen)))
    filled[rest] = matched.T.numpy()[rest]
    image = np.zeros((size * size, 3), np.float32)
    texel_index = atlas.texel_index.cpu().numpy()
    image[texel_index] = filled
    observed = np.zeros(size * size, bool)
    observed[texel_index] = seen
    face = head.face_region[corners].all(1)
    return FusedAlbedo((image.reshape(size, size, 3) * 255).round().astype(np.uint8),
                       observed.reshape(size, size), float(seen.mean()),
                       float(seen[face].mean()) if face.any() else 0.0, float(from_mirror.mean()))


def _default_texels(head: HeadAsset, atlas) -> np.ndarray:
    """(N, 3) the head's own albedo (or mid skin) at the atlas's texels, in [0, 1]."""
    return atlas.texels_of(albedo_for_rendering(head)).T.numpy()
