"""The decoded-texture PSNR: a frame rendered from a latent's own decoded texture scores far
higher for that latent than for another."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from backend.dam.model_folder import load_model, load_model_head
from backend.decoded_textures import decoded_view_directions
from backend.evaluation.decoded_texture_psnr import decoded_texture_psnr
from backend.formats.camera import centred_intrinsics, pose_matrix
from backend.head_space import HEAD_TO_FRONT_CAMERA
from backend.lab.capture import face_centre_and_height
from backend.render.camera import head_to_camera
from backend.render.unlit import render_unlit

MODEL = Path(__file__).parents[3] / "backend/models/default"


def test_the_true_latent_explains_the_frame_better_than_another(tmp_path: Path):
    model, _ = load_model(MODEL)
    head = load_model_head(MODEL)
    torch.manual_seed(0)
    z = torch.randn(1, model.config.latent) * 0.5
    centre, _ = face_centre_and_height(head)
    pose = pose_matrix(HEAD_TO_FRONT_CAMERA, np.array([0, 0, 0.6]) - HEAD_TO_FRONT_CAMERA @ centre)[None]
    k = centred_intrinsics(400.0, 160, 160)
    with torch.no_grad():
        vertices = model.decode_vertices(z)
        view = torch.as_tensor(decoded_view_directions(pose, head))
        texture = model.decode_texture_for_view(z, view).clamp(0, 1)
        image, _ = render_unlit(head_to_camera(vertices, torch.as_tensor(pose)), torch.as_tensor(head.faces),
                                torch.as_tensor(head.uv), torch.as_tensor(head.uv_faces), texture,
                                torch.as_tensor(k), 160, 160)
    footage = tmp_path / "frames"
    footage.mkdir()
    frame = (image[0].numpy() * 255).round().astype(np.uint8)
    cv2.imwrite(str(footage / "000000.png"), frame[..., ::-1])
    tracking = {"frames": np.array([0]), "confidence": np.ones(1, np.float32),
                "vertices": vertices.numpy(), "head_pose": pose, "intrinsics": k,
                "latent": z.numpy()}
    true = decoded_texture_psnr(tracking, footage, MODEL, head)
    other = decoded_texture_psnr({**tracking, "latent": z.numpy() + 1.5}, footage, MODEL, head)
    assert true["frames"] == 1 and true["psnr_db"] > 35
    assert other["psnr_db"] < true["psnr_db"] - 10
    # Over the pixels another track's face covers: itself changes nothing; a track 8 px aside
    # leaves fewer pixels (docs/identity.md compares heads of different widths this way).
    from backend.evaluation.face_coverage import FaceCoverage

    itself = decoded_texture_psnr(tracking, footage, MODEL, head,
                                  common_with=[FaceCoverage(tracking, head, "it")])
    assert itself["pixels"] == true["pixels"] > 0 and itself["psnr_db"] == pytest.approx(true["psnr_db"])
    moved = pose.copy()
    moved[:, 0, 3] += 8 * 0.6 / 400
    aside = decoded_texture_psnr(tracking, footage, MODEL, head,
                                 common_with=[FaceCoverage({**tracking, "head_pose": moved}, head, "aside")])
    assert 0 < aside["pixels"] < 0.95 * true["pixels"]
    untracked = {**tracking, "confidence": np.zeros(1, np.float32)}
    none = decoded_texture_psnr(tracking, footage, MODEL, head,
                                common_with=[FaceCoverage(untracked, head, "no")])
    assert none["pixels"] == 0 and none["psnr_db"] is None
