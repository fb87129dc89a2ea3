"""Decoded view-dependent textures (textures/<view>/NNNNNN.png) from the shipped default DAM."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from backend.dam.model_folder import DEFAULT_MODEL, decode, load_model, load_model_head
from backend.decoded_textures import STAGE, decoded_view_directions, write_decoded_textures
from backend.events import EventSink
from backend.lab.capture import face_centre_and_height, view_directions
from conftest import yawed_poses


@pytest.fixture(scope="module")
def default_model():
    model, _ = load_model(DEFAULT_MODEL)
    return model, load_model_head(DEFAULT_MODEL)


def read_png(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)


def test_view_directions_point_from_the_face_toward_the_camera(default_model):
    _, head = default_model
    directions = decoded_view_directions(yawed_poses(head, [0.0, 90.0]), head)
    np.testing.assert_allclose(directions[0], [0, -1, 0], atol=1e-6)  # the face looks along -Y
    np.testing.assert_allclose(np.linalg.norm(directions, axis=1), 1, atol=1e-6)
    assert abs(directions[1, 1]) < 1e-6 and abs(abs(directions[1, 0]) - 1) < 1e-6
    # The DAM's training convention (lab capture), and a scaled rig puts the camera in place.
    poses = yawed_poses(head, [10.0, -35.0])
    centre = torch.as_tensor(face_centre_and_height(head)[0])
    np.testing.assert_allclose(decoded_view_directions(poses, head),
                               view_directions(torch.as_tensor(poses), centre).numpy(), atol=1e-6)
    scaled = poses @ np.diag([2.0, 2.0, 2.0, 1.0])  # head scaled 2x: the camera is at half
    camera = -np.einsum("fji,fj->fi", poses[:, :3, :3], poses[:, :3, 3]) / 2
    expected = camera - centre.numpy()
    np.testing.assert_allclose(decoded_view_directions(scaled, head),
                               expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-6)


def test_written_textures_are_the_decoded_ones(default_model, tmp_path: Path):
    model, head = default_model
    rng = np.random.default_rng(0)
    latent = np.concatenate([np.zeros((1, 64)), rng.normal(0, 1, (2, 64))]).astype(np.float32)
    poses = yawed_poses(head, [0.0, 30.0, -20.0])
    frames = np.array([4, 5, 17])
    events: list[tuple] = []

    class Recorder(EventSink):
        def progress(self, stage: str, done: int, total: int) -> None:
            events.append((stage, done, total))

    count = write_decoded_textures(tmp_path / "footage", latent, poses, frames, model, head, "cpu",
                                   Recorder(False), batch=2)
    assert count == 3
    assert sorted(p.name for p in (tmp_path / "footage").iterdir()) == [
        "000004.png", "000005.png", "000017.png"]
    assert events == [(STAGE, 0, 3), (STAGE, 2, 3), (STAGE, 3, 3)]
    directions = torch.as_tensor(decoded_view_directions(poses, head))
    _, expected = decode(model, torch.as_tensor(latent), directions)
    expected = (expected.permute(0, 2, 3, 1) * 255).round().byte().numpy()
    for i, frame in enumerate(frames):
        written = read_png(tmp_path / "footage" / f"{frame:06d}.png")
        assert written.shape == (256, 256, 3) and written.dtype == np.uint8
        # Batches of another size round a few texels the other way (float sums in convolutions).
        difference = np.abs(written.astype(int) - expected[i])
        assert difference.max() <= 1 and (difference > 0).mean() < 1e-3


def test_textures_depend_on_the_view(default_model, tmp_path: Path):
    model, head = default_model
    latent = np.zeros((2, 64), np.float32)
    write_decoded_textures(tmp_path, latent, yawed_poses(head, [0.0, 40.0]), np.array([0, 1]),
                           model, head, "cpu", EventSink(False))
    front, side = (read_png(tmp_path / f"{i:06d}.png").astype(float) for i in (0, 1))
    assert np.abs(front - side).mean() > 0.5


def test_shapes_are_checked(default_model, tmp_path: Path):
    model, head = default_model
    with pytest.raises(ValueError, match="latent must be"):
        write_decoded_textures(tmp_path, np.zeros((2, 8)), yawed_poses(head, [0, 0]),
                               np.array([0, 1]), model, head, "cpu", EventSink(False))
    with pytest.raises(ValueError, match="head_to_camera must be"):
        write_decoded_textures(tmp_path, np.zeros((2, 64)), yawed_poses(head, [0]),
                               np.array([0, 1]), model, head, "cpu", EventSink(False))
