"""The adaptation's loss terms on renders of the default model's head and on known colours."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from backend.adaptation.losses import (
    ColourTransform,
    appearance_loss,
    landmark_loss,
    texture_consistency_loss,
)
from backend.dam.model_folder import load_model_head
from backend.head_space import HEAD_TO_FRONT_CAMERA
from backend.lab.capture import CaptureConfig, LabRenderer, face_centre_and_height
from backend.render.shading import render_textured
from backend.render.unwrap import make_atlas, unwrap

DEFAULT_MODEL = Path(__file__).parents[3] / "backend/models/default"
SIZE = 160


@pytest.fixture(scope="module")
def scene():
    head = load_model_head(DEFAULT_MODEL)
    lab = LabRenderer(head, CaptureConfig(texture_size=256), "cpu")
    centre, height = face_centre_and_height(head)
    focal = 2.0 * SIZE
    k = torch.tensor([[focal, 0, (SIZE - 1) / 2], [0, focal, (SIZE - 1) / 2], [0, 0, 1]], dtype=torch.float32)
    atlas = make_atlas(torch.as_tensor(head.uv), torch.as_tensor(head.uv_faces), torch.as_tensor(head.faces),
                       64)
    vertices = torch.as_tensor(head.vertices, dtype=torch.float32)
    return head, lab, centre, height, k, atlas, vertices


def _camera(vertices, centre, height, yaw_deg, shift_m=(0.0, 0.0)):
    """Camera-space vertices of the head turned by yaw_deg, its face centre 4 face heights away."""
    c, s = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    yaw = torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=torch.float32)
    rotation = yaw @ torch.as_tensor(HEAD_TO_FRONT_CAMERA, dtype=torch.float32)
    centre_t = torch.as_tensor(centre, dtype=torch.float32)
    translation = torch.tensor([shift_m[0], shift_m[1], 4 * height]) - rotation @ centre_t
    return vertices @ rotation.T + translation


def _render(lab, k, camera):
    image, _ = render_textured(camera[None], lab.faces, lab.uv, lab.uv_faces, lab.albedo, k, SIZE, SIZE,
                               ambient=1.0)
    return image[0].permute(2, 0, 1)


def test_texture_consistency_is_zero_for_a_static_head_and_rises_with_a_misplaced_pose(scene):
    head, lab, centre, height, k, atlas, vertices = scene
    faces = torch.as_tensor(head.faces)
    frames = [_camera(vertices, centre, height, yaw) for yaw in (0.0, 4.0)]
    images = [_render(lab, k, camera) for camera in frames]
    static = [unwrap(images[0], frames[0][None], k, faces, atlas) for _ in range(2)]
    assert float(texture_consistency_loss(static[0][0], static[0][1], static[1][0], static[1][1])) == 0.0
    # Two views of the head, each unwrapped through its own true pose: the surface agrees.
    (a, va), (b, vb) = (unwrap(image, camera[None], k, faces, atlas)
                        for image, camera in zip(images, frames, strict=True))
    right = float(texture_consistency_loss(a, va, b, vb))
    # The second frame's pose misplaced by 4 mm: its texture slides against the first.
    wrong_pose = _camera(vertices, centre, height, 4.0, shift_m=(0.004, 0.0))
    c, vc = unwrap(images[1], wrong_pose[None], k, faces, atlas)
    wrong = float(texture_consistency_loss(a, va, c, vc))
    assert right < 0.5 * wrong, (right, wrong)


def test_appearance_loss_recovers_a_known_colour_transform():
    generator = torch.Generator().manual_seed(0)
    decoded = torch.nn.functional.interpolate(torch.rand(2, 3, 8, 8, generator=generator), size=(32, 32),
                                              mode="bilinear") * 0.6 + 0.2
    decoded = decoded + 0.1 * torch.rand(2, 3, 32, 32, generator=generator)  # detail
    matrix = torch.tensor([[1.2, 0.1, 0.0], [0.05, 0.9, 0.05], [0.0, -0.1, 1.1]])
    offset = torch.tensor([0.05, -0.03, 0.02])
    # The footage's colours: what the model's colours become through the inverse transform.
    footage = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(matrix), decoded - offset.view(3, 1, 1))
    visible = torch.ones(2, 32, 32, dtype=torch.bool)
    colour = ColourTransform()
    optimiser = torch.optim.Adam(colour.parameters(), lr=0.01)
    for _ in range(600):
        loss = appearance_loss(footage, visible, decoded, colour, shading_window=7, shading_weight=0.1)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert torch.allclose(colour.matrix.detach(), matrix, atol=0.03), colour.matrix
    assert torch.allclose(colour.offset.detach(), offset, atol=0.02), colour.offset


def test_appearance_compares_detail_not_a_smooth_shading_field():
    generator = torch.Generator().manual_seed(1)
    decoded = 0.5 + 0.2 * torch.rand(1, 3, 32, 32, generator=generator)
    ramp = torch.linspace(-0.15, 0.15, 32).view(1, 1, 1, 32).expand(1, 3, 32, 32)  # a key light from one side
    visible = torch.ones(1, 32, 32, dtype=torch.bool)
    identity = ColourTransform()

    def loss(footage: torch.Tensor, window: int) -> float:
        with torch.no_grad():
            return float(appearance_loss(footage, visible, decoded, identity, window, shading_weight=0.0))

    lit, whole = loss(decoded + ramp, 7), loss(decoded + ramp, 0)
    moved = loss(torch.roll(decoded, 2, dims=3), 7)
    assert lit < 0.1 * whole and lit < 0.1 * moved, (lit, whole, moved)


def test_landmark_loss_is_zero_on_the_detections_and_bounded_for_an_outlier():
    points = torch.tensor([[[0.0, 0.0, 1.0], [0.1, 0.0, 1.0], [0.0, 0.1, 1.0]]], requires_grad=True)
    k = torch.tensor([[[100.0, 0, 50], [0, 100, 50], [0, 0, 1]]])
    detected = torch.tensor([[[50.0, 50.0], [60.0, 50.0], [50.0, 60.0]]])
    confidence = torch.ones(1, 3)
    assert float(landmark_loss(points, k, detected, confidence, 100)) == pytest.approx(0.0, abs=1e-9)
    near, far = detected.clone(), detected.clone()
    near[0, 0, 0] += 5
    far[0, 0, 0] += 500
    gradients = []
    for target in (near, far):
        points.grad = None
        landmark_loss(points, k, target, confidence, 100).backward()
        gradients.append(float(points.grad.norm()))
    assert gradients[1] < 1.5 * gradients[0]  # robust: a 100x outlier pulls hardly harder
    unconfident = torch.tensor([[0.0, 1.0, 1.0]])
    assert float(landmark_loss(points, k, far, unconfident, 100)) == pytest.approx(0.0, abs=1e-9)
