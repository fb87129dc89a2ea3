"""The torch pinhole camera: the numpy twin's numbers (formats/camera.py), differentiable."""

from __future__ import annotations

import numpy as np
import torch

from backend.formats import camera as numpy_camera
from backend.render.camera import centred_intrinsics, head_to_camera, pose_matrix


def _poses(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.normal(size=(count, 3, 3)))
    rotation *= np.sign(np.linalg.det(rotation))[:, None, None]  # proper rotations
    return rotation.astype(np.float32), rng.normal(size=(count, 3)).astype(np.float32)


def test_head_to_camera_matches_the_numpy_twin():
    rotation, translation = _poses(4)
    points = np.random.default_rng(1).normal(size=(4, 7, 3)).astype(np.float32)
    pose = numpy_camera.pose_matrix(rotation, translation)
    expected = numpy_camera.head_to_camera(points, pose)
    np.testing.assert_allclose(head_to_camera(torch.as_tensor(points), torch.as_tensor(pose)).numpy(),
                               expected, atol=1e-6)
    # One pose for many point sets broadcasts, as in the numpy twin.
    shared = head_to_camera(torch.as_tensor(points), torch.as_tensor(pose[0]))
    np.testing.assert_allclose(shared.numpy(), numpy_camera.head_to_camera(points, pose[0]), atol=1e-6)


def test_pose_matrix_matches_the_numpy_twin_and_carries_gradients():
    rotation, translation = _poses(3)
    r = torch.as_tensor(rotation, dtype=torch.float64).requires_grad_(True)
    t = torch.as_tensor(translation, dtype=torch.float64).requires_grad_(True)
    pose = pose_matrix(r, t)
    np.testing.assert_array_equal(pose.detach().numpy(),
                                  numpy_camera.pose_matrix(rotation, translation, np.float64))
    pose.sum().backward()
    assert (r.grad == 1).all() and (t.grad == 1).all()


def test_centred_intrinsics_match_the_numpy_twin_and_differentiate_the_focal_length():
    focal = torch.tensor(512.25, requires_grad=True)
    k = centred_intrinsics(focal, 640, 479)
    np.testing.assert_array_equal(k.detach().numpy(), numpy_camera.centred_intrinsics(512.25, 640, 479))
    k.sum().backward()
    assert focal.grad == 2.0  # it is K[0, 0] and K[1, 1]
