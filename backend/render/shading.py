"""Simple shading for previews, lab renders and figures: Lambert (textured or vertex colours) plus
a Blinn-Phong specular."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .rasterize import (
    Fragments,
    barycentrics,
    interpolate,
    interpolate_corners,
    project,
    rasterize,
)
from .texture import sample


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals (B, V, 3) of counter-clockwise triangles."""
    faces = faces.to(vertices.device, torch.int64)
    a, b, c = (vertices[:, faces[:, i]] for i in range(3))
    face_n = torch.cross(b - a, c - a, dim=-1)
    normals = torch.zeros_like(vertices)
    for i in range(3):
        normals.index_add_(1, faces[:, i], face_n)
    return F.normalize(normals, dim=-1, eps=1e-12)


def _to_light(light_dir: tuple[float, float, float], like: torch.Tensor) -> torch.Tensor:
    """(3,) unit vector toward the light, from the direction the light travels."""
    return -F.normalize(torch.tensor(light_dir, dtype=like.dtype, device=like.device), dim=0)


def lambert(colour: torch.Tensor, normal: torch.Tensor, to_light: torch.Tensor, ambient: float) -> torch.Tensor:
    """colour * (ambient + (1 - ambient) * |n . l|), (..., C) from colour (..., C), unit normals
    (..., 3) and to_light (3,). Two-sided (abs): head meshes' winding is not outward everywhere
    (eyes, mouth bag)."""
    diffuse = (normal * to_light).sum(-1, keepdim=True).abs()
    return colour * (ambient + (1 - ambient) * diffuse)


def render_vertex_colours(vertices: torch.Tensor, faces: torch.Tensor, colours: torch.Tensor,
                          intrinsics: torch.Tensor, height: int, width: int,
                          light_dir: tuple[float, float, float] = (0.4, 0.5, 1.0),
                          ambient: float = 0.45) -> tuple[torch.Tensor, Fragments]:
    """Lambert-shaded image of posed meshes with per-vertex colours (figures: a value per vertex
    drawn on a head, shaded so the shape reads).

    vertices: (B, V, 3) camera space (OpenCV axes, metres); faces: (T, 3); colours: (V, C) or
    (B, V, C); intrinsics: (3, 3) or (B, 3, 3) pixels; light_dir: direction the light travels,
    camera space (default: from the camera's upper left). Returns image (B, H, W, C), zero off
    the mesh, and fragments.
    """
    screen = project(vertices, intrinsics)
    fragments = rasterize(screen, faces, height, width)
    weights = barycentrics(screen, faces, fragments)
    colour = interpolate(colours.to(vertices.device, vertices.dtype), faces, fragments, weights)
    normal = F.normalize(interpolate(vertex_normals(vertices, faces), faces, fragments, weights),
                         dim=-1, eps=1e-12)
    image = lambert(colour, normal, _to_light(light_dir, vertices), ambient)
    return image * fragments.mask.unsqueeze(-1), fragments


def render_textured(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    uv: torch.Tensor,
    uv_faces: torch.Tensor,
    albedo: torch.Tensor,
    intrinsics: torch.Tensor,
    height: int,
    width: int,
    light_dir: tuple[float, float, float] = (0.3, -0.4, -1.0),
    ambient: float = 0.35,
    specular: float = 0.0,
    shininess: float = 30.0,
) -> tuple[torch.Tensor, Fragments]:
    """Shaded image of posed meshes.

    vertices: (B, V, 3) camera space (OpenCV axes, metres); faces, uv_faces: (T, 3); uv: (U, 2);
    albedo: (3, S, S) in [0, 1]; intrinsics: (3, 3) or (B, 3, 3); light_dir: direction the light
    travels, camera space. Returns image (B, H, W, 3) in [0, 1] (zero off the mesh) and fragments.
    """
    screen = project(vertices, intrinsics)
    fragments = rasterize(screen, faces, height, width)
    weights = barycentrics(screen, faces, fragments)
    normals = vertex_normals(vertices, faces)
    n = F.normalize(interpolate(normals, faces, fragments, weights), dim=-1, eps=1e-12)
    # UVs are indexed per corner (uv_faces), so interpolate corner attributes directly.
    corner_uv = uv.to(vertices.device)[uv_faces.to(vertices.device, torch.int64)]  # (T, 3, 2)
    pixel_uv = interpolate_corners(corner_uv, fragments, weights)
    colour = sample(albedo.to(vertices.device), pixel_uv)
    to_light = _to_light(light_dir, vertices)
    image = lambert(colour, n, to_light, ambient)
    if specular > 0:
        position = interpolate(vertices, faces, fragments, weights)
        to_eye = F.normalize(-position, dim=-1, eps=1e-12)
        half = F.normalize(to_eye + to_light, dim=-1, eps=1e-12)
        image = image + specular * (n * half).sum(-1, keepdim=True).abs() ** shininess
    image = image.clamp(0, 1) * fragments.mask.unsqueeze(-1)
    return image, fragments
