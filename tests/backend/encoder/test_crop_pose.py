import math

import torch

from backend.encoder.crop_pose import (
    pose_from_crop,
    pose_to_crop,
    ray_rotation,
    rotation_from_6d,
    rotation_to_6d,
)

CENTRE = torch.tensor([0.0, -0.09, 0.12])
HEIGHT = 0.2


def _poses(count=6):
    torch.manual_seed(0)
    pose = torch.eye(4).repeat(count, 1, 1)
    pose[:, :3, :3] = rotation_from_6d(torch.randn(count, 6))
    pose[:, :3, 3] = torch.tensor([0.05, -0.03, 0.7]) + 0.05 * torch.randn(count, 3)
    return pose


def test_6d_rotations_are_rotations_and_round_trip():
    rotation = rotation_from_6d(torch.randn(20, 6))
    eye = torch.eye(3).expand(20, 3, 3)
    assert torch.allclose(rotation @ rotation.transpose(1, 2), eye, atol=1e-5)
    assert torch.allclose(torch.det(rotation), torch.ones(20), atol=1e-5)
    assert torch.allclose(rotation_from_6d(rotation_to_6d(rotation)), rotation, atol=1e-5)


def test_crop_parameters_round_trip_to_the_pose():
    pose = _poses()
    k = torch.tensor([[900.0, 0, 80], [0, 900, 40], [0, 0, 1]]).expand(len(pose), 3, 3)
    back = pose_from_crop(*pose_to_crop(pose, k, 128, CENTRE, HEIGHT), k, 128, CENTRE, HEIGHT)
    assert torch.allclose(back, pose, atol=1e-5)


def test_the_ray_rotation_points_the_optical_axis_through_the_crop_centre():
    k = torch.tensor([[500.0, 0, -100], [0, 500, 300], [0, 0, 1]])
    rotation = ray_rotation(k, 64)
    axis = rotation @ torch.tensor([0.0, 0, 1])
    pixel = k @ axis
    assert torch.allclose(pixel[:2] / pixel[2], torch.tensor([31.5, 31.5]), atol=1e-3)
    centred = torch.tensor([[500.0, 0, 31.5], [0, 500, 31.5], [0, 0, 1]])
    assert torch.allclose(ray_rotation(centred, 64), torch.eye(3), atol=1e-6)


def test_a_face_twice_as_far_is_smaller_by_log_two():
    pose = _poses(1)
    far = pose.clone()
    centre_cam = pose[0, :3, :3] @ CENTRE + pose[0, :3, 3]
    far[0, :3, 3] += centre_cam  # the face centre twice as far along its ray
    k = torch.tensor([[900.0, 0, 63.5], [0, 900, 63.5], [0, 0, 1]])
    _, uv_near, s_near = pose_to_crop(pose, k, 128, CENTRE, HEIGHT)
    _, uv_far, s_far = pose_to_crop(far, k, 128, CENTRE, HEIGHT)
    assert torch.allclose(uv_near, uv_far, atol=1e-5)
    assert math.isclose(float(s_near - s_far), math.log(2), rel_tol=1e-4)
