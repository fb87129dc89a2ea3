"""A procedural skin albedo for the default head, painted per texel from 3D position.

No photographic texture ships with the CC0 base mesh, and a flat grey head is hard for face
detectors. Each texel's surface point (found by rasterizing the mesh in UV space) is coloured
by where it lies: skin with low-frequency variation, darker brows above the eyes, lips from
MakeHuman's lip mask, white sclera with iris and pupil on the eye helpers, teeth, tongue.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..render.rasterize import interpolate_corners
from ..render.texture import rasterize_uv, sample, surface_in_uv

SKIN = np.array([0.78, 0.58, 0.47])
BROW = np.array([0.23, 0.15, 0.10])
LIPS = np.array([0.62, 0.33, 0.32])
SCLERA = np.array([0.92, 0.90, 0.86])
IRIS = np.array([0.30, 0.20, 0.12])
PUPIL = np.array([0.03, 0.03, 0.03])
TEETH = np.array([0.90, 0.88, 0.80])
TONGUE = np.array([0.65, 0.30, 0.30])


@dataclass(frozen=True)
class Palette:
    """Colours (RGB in [0, 1]) of a painted skin, and how thick its brows are (1: the default
    head's)."""

    skin: tuple[float, float, float] = tuple(SKIN)
    brow: tuple[float, float, float] = tuple(BROW)
    lips: tuple[float, float, float] = tuple(LIPS)
    brow_thickness: float = 1.0


DEFAULT_PALETTE = Palette()


def paint_albedo(vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray, uv_faces: np.ndarray,
                 triangle_groups: list[str], eye_centres: np.ndarray, lip_mask_path: Path,
                 mask_uv: np.ndarray, size: int = 1024, seed: int = 0) -> np.ndarray:
    """(size, size, 3) uint8 albedo in the layout `uv`; row 0 is the top of the texture (v = 1).

    vertices (V, 3) head space metres; eye_centres (2, 3) left/right eye centre; mask_uv (U, 2)
    the layout of the lip mask image (indexed by the same uv_faces).
    """
    from PIL import Image

    p, tri = _surface(vertices, faces, uv, uv_faces, size)
    colour = skin_with_brows(p, eye_centres, seed)
    lip_mask = torch.as_tensor(np.array(Image.open(lip_mask_path).convert("L")), dtype=torch.float32)
    fragments, weights = rasterize_uv(torch.as_tensor(uv), torch.as_tensor(uv_faces), size)
    texel_mask_uv = interpolate_corners(torch.as_tensor(mask_uv)[torch.as_tensor(uv_faces)],
                                        fragments, weights)
    lips = sample(lip_mask[None] / 255, texel_mask_uv)[0, ..., 0].numpy().astype(np.float64)
    colour = _blend(colour, LIPS, np.clip(lips * 1.4, 0, 1))

    groups = np.array([*triangle_groups, ""])  # index -1 -> ""
    group = groups[tri]
    for side, centre in zip(("helper-l-eye", "helper-r-eye"), eye_centres, strict=False):
        on_eye = group == side
        offset = p - centre
        norm = np.linalg.norm(offset, axis=-1) + 1e-9
        forward = -offset[..., 1] / norm  # cos of angle to the eye's forward axis (-Y)
        eye_colour = np.where((forward > 0.93)[..., None], PUPIL,
                              np.where((forward > 0.80)[..., None], IRIS, SCLERA))
        colour = np.where(on_eye[..., None], eye_colour, colour)
    colour = np.where(np.char.find(group, "teeth")[..., None] >= 0, TEETH, colour)
    colour = np.where((group == "helper-tongue")[..., None], TONGUE, colour)
    colour = np.where((tri >= 0)[..., None], colour, SKIN)
    return (np.clip(colour, 0, 1) * 255).round().astype(np.uint8)


def paint_skin_albedo(vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray,
                      uv_faces: np.ndarray, eye_centres: np.ndarray, size: int = 1024,
                      seed: int = 0, palette: Palette = DEFAULT_PALETTE,
                      lip_outline: np.ndarray | None = None) -> np.ndarray:
    """Skin and brows, for heads without a texture (the ICT FaceKit head); lips too where
    `lip_outline` (L, 3) head-space points of the outer lip contour in order (iBUG 48-59) is
    given: the surface in front of the mouth whose frontal (X, Z) projection lies inside it."""
    p, tri = _surface(vertices, faces, uv, uv_faces, size)
    colour = skin_with_brows(p, eye_centres, seed, palette)
    if lip_outline is not None:
        in_front = p[..., 1] < lip_outline[:, 1].max() + 0.015  # the lips roll inwards
        lips = _inside_polygon(p[..., [0, 2]], lip_outline[:, [0, 2]]) & in_front
        colour = _blend(colour, np.array(palette.lips), lips * 0.9)
    colour = np.where((tri >= 0)[..., None], colour, np.array(palette.skin))
    return (np.clip(colour, 0, 1) * 255).round().astype(np.uint8)


def _inside_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(...,) bool: points (..., 2) inside the closed polygon (L, 2) (even-odd rule)."""
    x, y = points[..., 0], points[..., 1]
    inside = np.zeros(points.shape[:-1], bool)
    for (x0, y0), (x1, y1) in zip(polygon, np.roll(polygon, -1, axis=0), strict=True):
        crosses = (y0 > y) != (y1 > y)
        at_x = x0 + (y - y0) * (x1 - x0) / np.where(y1 == y0, 1e-12, y1 - y0)
        inside ^= crosses & (x < at_x)
    return inside


def _surface(vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray, uv_faces: np.ndarray,
             size: int) -> tuple[np.ndarray, np.ndarray]:
    position, triangle = surface_in_uv(torch.as_tensor(vertices, dtype=torch.float32),
                                       torch.as_tensor(faces), torch.as_tensor(uv, dtype=torch.float32),
                                       torch.as_tensor(uv_faces), size)
    return position.numpy().astype(np.float64), triangle.numpy()


def skin_with_brows(position: np.ndarray, eye_centres: np.ndarray, seed: int = 0,
                    palette: Palette = DEFAULT_PALETTE) -> np.ndarray:
    """(..., 3) colour in [0, 1] of skin points at head-space `position` (..., 3) metres: a skin
    tone with low-frequency variation, and brows placed relative to the eye centres (2, 3)."""
    x, y, z = position[..., 0], position[..., 1], position[..., 2]
    rng = np.random.default_rng(seed)
    colour = np.broadcast_to(np.array(palette.skin), position.shape).copy()
    freq = rng.normal(size=(3, 3)) * 40.0
    phase = rng.uniform(0, 2 * np.pi, 3)
    blotch = sum(np.sin(freq[i, 0] * x + freq[i, 1] * y + freq[i, 2] * z + phase[i]) for i in range(3))
    colour *= (1.0 + 0.03 * blotch)[..., None]
    for centre in eye_centres:
        dx, dz = x - centre[0], z - centre[2]
        front = y < centre[1] + 0.01
        # A brow is an arc 1.4-2.4 cm above the eye centre, 5 cm wide, thicker towards the nose.
        inner = np.sign(centre[0]) * -dx
        brow_mid = 0.019 - 0.004 * (np.abs(dx) / 0.025) ** 2
        thickness = (0.0045 + 0.0015 * np.clip(inner / 0.025, -1, 1)) * palette.brow_thickness
        across = np.exp(-((dx + 0.003 * np.sign(centre[0])) / 0.024) ** 6)
        brow = np.exp(-((dz - brow_mid) / thickness) ** 4) * across * front
        colour = _blend(colour, np.array(palette.brow), np.clip(brow, 0, 1) * 0.9)
    return colour


def _blend(colour: np.ndarray, target: np.ndarray, amount: np.ndarray) -> np.ndarray:
    return colour * (1 - amount[..., None]) + target * amount[..., None]
