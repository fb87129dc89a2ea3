"""Unwrapping and the differentiable parts of the renderer."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from backend.heads.landmark_embedding import view_camera
from backend.render.rasterize import barycentrics, interpolate, project, rasterize
from backend.render.shading import render_textured
from backend.render.unwrap import make_atlas, unwrap


def _head_scene(head, yaw: float, size: int):
    rotation, translation, k = view_camera(head, yaw)
    scale = size / 512
    k = torch.tensor([[k[0, 0] * scale, 0, (size - 1) / 2], [0, k[1, 1] * scale, (size - 1) / 2],
                      [0, 0, 1]], dtype=torch.float32)
    vertices = torch.tensor(head.vertices @ rotation.T + translation, dtype=torch.float32)[None]
    return vertices, k


def test_unwrapping_a_render_returns_the_texture(default_head):
    """Render the textured head with flat light (image = albedo), unwrap it: the visible texels
    hold the albedo. PSNR over visible texels away from the visibility border > 37 dB (40.5 dB
    measured); including the border, where texels mix with the background, > 24 dB (26.1)."""
    head = default_head
    vertices, k = _head_scene(head, 25.0, 1024)
    albedo = torch.as_tensor(head.albedo).permute(2, 0, 1).float() / 255
    faces = torch.as_tensor(head.faces)
    image, _ = render_textured(vertices, faces, torch.as_tensor(head.uv), torch.as_tensor(head.uv_faces),
                               albedo, k, 1024, 1024, ambient=1.0)
    atlas = make_atlas(torch.as_tensor(head.uv), torch.as_tensor(head.uv_faces), faces, 512)
    texture, visible = unwrap(image.permute(0, 3, 1, 2), vertices, k, faces, atlas)
    reference = F.interpolate(albedo[None], size=512, mode="area")[0]
    error = ((texture[0] - reference) ** 2).mean(0)
    interior = -F.max_pool2d(-visible[None].float(), 5, 1, 2)[0, 0] > 0.5
    psnr_interior = -10 * math.log10(error[interior].mean().item())
    psnr_all = -10 * math.log10(error[visible[0]].mean().item())
    assert visible.sum() > 20_000
    assert psnr_interior > 37, psnr_interior
    assert psnr_all > 24, psnr_all
    # Texels of the back of the head are not visible from the front.
    assert visible.sum() < atlas.texel_index.numel() * 0.8


def test_occluded_and_out_of_frame_texels_are_invisible(default_head):
    head = default_head
    vertices, k = _head_scene(head, 0.0, 256)
    faces = torch.as_tensor(head.faces)
    atlas = make_atlas(torch.as_tensor(head.uv), torch.as_tensor(head.uv_faces), faces, 128)
    image = torch.rand(3, 256, 256)
    _, visible = unwrap(image, vertices, k, faces, atlas)
    # Move the head out of the frame: nothing is visible.
    _, none = unwrap(image, vertices + torch.tensor([5.0, 0, 0]), k, faces, atlas)
    # Behind the camera: nothing is visible either.
    _, behind = unwrap(image, vertices - torch.tensor([0, 0, 2.0]), k, faces, atlas)
    assert visible.any() and not none.any() and not behind.any()


def _tiny_mesh(dtype=torch.float64):
    vertices = torch.tensor([[[-0.1, -0.1, 1.0], [0.12, -0.08, 1.1], [-0.09, 0.11, 0.95],
                              [0.1, 0.1, 1.05]]], dtype=dtype)
    faces = torch.tensor([[0, 2, 1], [1, 2, 3]])  # counter-clockwise seen from the camera
    uv = torch.tensor([[0.1, 0.1], [0.9, 0.1], [0.1, 0.9], [0.9, 0.9]])
    k = torch.tensor([[60.0, 0, 15.5], [0, 60, 15.5], [0, 0, 1]], dtype=dtype)
    return vertices, faces, uv, k


def _smooth_image(size: int = 32, dtype=torch.float64) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(size, dtype=dtype), torch.arange(size, dtype=dtype),
                            indexing="ij")
    return torch.stack([torch.sin(xs / 5) + torch.cos(ys / 7), torch.cos(xs / 4 + ys / 9)])


def _finite_difference(loss, vertices: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    grad = torch.zeros_like(vertices)
    for index in range(vertices.numel()):
        step = torch.zeros_like(vertices).view(-1)
        step[index] = eps
        step = step.view_as(vertices)
        grad.view(-1)[index] = (loss(vertices + step) - loss(vertices - step)) / (2 * eps)
    return grad


def test_interpolate_gradient_matches_finite_differences():
    vertices, faces, _, k = _tiny_mesh()
    attributes = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 1.0], [0.5, 0.5]], dtype=torch.float64)
    fragments = rasterize(project(vertices, k), faces, 32, 32)
    weights_out = torch.randn(1, 32, 32, 2, dtype=torch.float64)

    def loss(v: torch.Tensor) -> torch.Tensor:
        screen = project(v, k)
        values = interpolate(attributes, faces, fragments, barycentrics(screen, faces, fragments))
        return (values * weights_out).sum()

    v = vertices.clone().requires_grad_(True)
    loss(v).backward()
    torch.testing.assert_close(v.grad, _finite_difference(loss, vertices), rtol=1e-4, atol=1e-6)


def test_unwrap_gradient_matches_finite_differences():
    vertices, faces, uv, k = _tiny_mesh()
    atlas = make_atlas(uv, faces, faces, 16)
    image = _smooth_image()
    weights_out = torch.randn(1, 2, 16, 16, dtype=torch.float64)

    def loss(v: torch.Tensor) -> torch.Tensor:
        texture, _ = unwrap(image, v, k, faces, atlas)
        return (texture * weights_out).sum()

    v = vertices.clone().requires_grad_(True)
    loss(v).backward()
    assert v.grad.abs().sum() > 0
    # Bilinear sampling is piecewise linear: compare with a step well inside one texel cell.
    torch.testing.assert_close(v.grad, _finite_difference(loss, vertices, 1e-7), rtol=1e-3, atol=1e-4)


def test_bad_input():
    vertices, faces, uv, k = _tiny_mesh(torch.float32)
    atlas = make_atlas(uv, faces, faces, 8)
    with pytest.raises(ValueError, match="empty"):
        unwrap(torch.zeros(3, 0, 0), vertices, k, faces, atlas)
    with pytest.raises(ValueError, match="NaN"):
        unwrap(torch.zeros(3, 8, 8), vertices * float("nan"), k, faces, atlas)
    with pytest.raises(ValueError, match="image size"):
        rasterize(project(vertices, k), faces, 0, 10)
    with pytest.raises(ValueError, match="faces index"):
        rasterize(project(vertices, k), torch.tensor([[0, 1, 9]]), 8, 8)
