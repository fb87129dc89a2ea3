"""Albedo fusion recovers a known texture on the texels the frames saw, with the light taken
out, and completes the rest from the mirror side and the default albedo."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.formats.camera import centred_intrinsics, head_to_camera
from backend.identity.albedo_fusion import fuse_albedo
from backend.render.shading import render_textured
from backend.render.unwrap import make_atlas
from tests.conftest import yawed_poses

SIZE = 256


@pytest.fixture(scope="module")
def known_texture(default_head) -> torch.Tensor:
    """(3, S, S) in [0, 1]: the default albedo tinted blue and overlaid with a pattern, so
    nothing of it can come from the default albedo the fill falls back to."""
    base = torch.nn.functional.interpolate(
        torch.as_tensor(default_head.albedo).permute(2, 0, 1).float()[None] / 255, size=(SIZE, SIZE),
        mode="area")[0]
    rows, cols = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    pattern = torch.as_tensor(0.15 * np.sin(cols * 40) * np.sin(rows * 37), dtype=torch.float32)
    return (base * torch.tensor([0.8, 0.95, 1.1])[:, None, None] + pattern).clamp(0, 1)


def renders(head, texture: torch.Tensor, **light) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nine views turning -40..40 degrees: (images, camera-space vertices, intrinsics)."""
    k = centred_intrinsics(900.0, 512, 512)
    images, cams = [], []
    for pose in yawed_poses(head, list(np.linspace(-40, 40, 9))):
        cam = head_to_camera(head.vertices, pose)
        image, _ = render_textured(torch.as_tensor(cam, dtype=torch.float32)[None], torch.as_tensor(head.faces),
                                   torch.as_tensor(head.uv), torch.as_tensor(head.uv_faces), texture,
                                   torch.as_tensor(k), 512, 512, **light)
        images.append((image[0].numpy() * 255).round().astype(np.uint8))
        cams.append(cam)
    return np.stack(images), np.stack(cams), k


@pytest.fixture(scope="module")
def unlit(default_head, known_texture):
    return renders(default_head, known_texture, ambient=1.0)


def face_texels(head) -> np.ndarray:
    atlas = make_atlas(torch.as_tensor(head.uv), torch.as_tensor(head.uv_faces),
                       torch.as_tensor(head.faces), SIZE)
    mask = np.zeros(SIZE * SIZE, bool)
    mask[atlas.texel_index.numpy()[head.face_region[atlas.corners.numpy()].all(1)]] = True
    return mask.reshape(SIZE, SIZE)


def gain_aligned_error(fused: np.ndarray, truth: np.ndarray) -> float:
    """Mean absolute error (8-bit levels) after the best gain per channel: a light's overall
    level and an albedo's cannot be told apart."""
    fused, truth = fused.astype(np.float64), truth.astype(np.float64)
    gain = (fused * truth).sum(0) / (fused * fused).sum(0)
    return float(np.abs(fused * gain - truth).mean())


def test_an_unlit_texture_is_recovered_exactly(default_head, known_texture, unlit):
    images, cams, k = unlit
    fused = fuse_albedo(default_head, images, cams, k, size=SIZE)
    truth = (known_texture.permute(1, 2, 0).numpy() * 255)
    texels = fused.observed & face_texels(default_head)
    assert fused.observed_face_fraction > 0.95
    assert gain_aligned_error(fused.albedo[texels], truth[texels]) < 1.5


def test_the_light_is_taken_out(default_head, known_texture):
    images, cams, k = renders(default_head, known_texture, light_dir=(0.4, -0.3, 1.0), ambient=0.4)
    fused = fuse_albedo(default_head, images, cams, k, size=SIZE)
    truth = (known_texture.permute(1, 2, 0).numpy() * 255)
    texels = fused.observed & face_texels(default_head)
    spread = np.abs(truth[texels] - truth[texels].mean(0)).mean()
    error = gain_aligned_error(fused.albedo[texels], truth[texels])
    print(f"error {error:.2f} levels, the texture's own spread {spread:.2f}")
    assert error < 0.4 * spread


def test_unseen_texels_are_completed(default_head, unlit):
    # Only one side of the face is filmed: the other side comes from the mirror.
    images, cams, k = unlit
    fused = fuse_albedo(default_head, images[:2], cams[:2], k, size=SIZE)
    assert fused.observed_fraction < 0.3 and fused.mirrored_fraction > 0.1
    # The mirrored side is the filmed side's colour: its mean matches within a few levels.
    layout = make_atlas(torch.as_tensor(default_head.uv), torch.as_tensor(default_head.uv_faces),
                        torch.as_tensor(default_head.faces), SIZE).mask.numpy()
    filled = fused.albedo[layout & ~fused.observed].astype(float).mean(0)
    seen = fused.albedo[fused.observed].astype(float).mean(0)
    assert np.abs(filled - seen).max() < 25
