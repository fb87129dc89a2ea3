"""The shared pinhole camera (numpy): intrinsics, head -> camera, projection, poses."""

from __future__ import annotations

import numpy as np

from backend.formats.camera import centred_intrinsics, head_to_camera, pose_matrix, project_points

# 90 degrees about +Z: head x -> camera y, head y -> camera -x.
QUARTER_TURN = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])


def rotation_about(axis: int, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    i, j = [a for a in range(3) if a != axis]
    rotation = np.eye(3)
    rotation[i, i], rotation[i, j], rotation[j, i], rotation[j, j] = c, -s, s, c
    return rotation


def test_centred_intrinsics_put_the_principal_point_at_the_image_centre():
    k = centred_intrinsics(500.0, 640, 480)
    assert k.dtype == np.float32
    np.testing.assert_array_equal(k, [[500, 0, 319.5], [0, 500, 239.5], [0, 0, 1]])
    # Odd sizes: the centre is the middle pixel's centre (pixel centres at integers).
    np.testing.assert_array_equal(centred_intrinsics(100.0, 5, 3)[:2, 2], [2.0, 1.0])
    # A point on the optical axis lands there.
    on_axis = project_points(np.array([[0.0, 0, 0]]), pose_matrix(np.eye(3), [0, 0, 2.0]), k)
    np.testing.assert_allclose(on_axis, [[319.5, 239.5]])


def test_project_points_matches_a_hand_computed_case():
    # R p + t = (-0.4, 0.2, 0.5) + (0.1, -0.2, 2.0) = (-0.3, 0.0, 2.5);
    # u = 100 * -0.3 / 2.5 + 50 = 38, v = 100 * 0 / 2.5 + 40 = 40.
    pose = pose_matrix(QUARTER_TURN, np.array([0.1, -0.2, 2.0]))
    k = np.array([[100.0, 0, 50], [0, 100, 40], [0, 0, 1]])
    points = np.array([[0.2, 0.4, 0.5], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(head_to_camera(points, pose), [[-0.3, 0.0, 2.5], [0.1, -0.2, 2.0]],
                               atol=1e-6)
    np.testing.assert_allclose(project_points(points, pose, k), [[38.0, 40.0], [55.0, 30.0]],
                               atol=1e-5)


def test_projection_broadcasts_over_frames():
    rng = np.random.default_rng(3)
    frames, n = 5, 7
    rotations = np.stack([rotation_about(1, a) @ rotation_about(0, b)
                          for a, b in rng.uniform(-0.5, 0.5, (frames, 2))])
    translations = np.column_stack([rng.uniform(-0.1, 0.1, (frames, 2)), rng.uniform(0.4, 0.8, frames)])
    poses = pose_matrix(rotations, translations)
    k = centred_intrinsics(300.0, 64, 48)
    per_frame_points = rng.normal(0, 0.05, (frames, n, 3))
    shared_points = per_frame_points[0]

    def one_by_one(points_of_frame):
        out = []
        for f in range(frames):
            camera = (rotations[f] @ points_of_frame(f).T).T + translations[f]
            pixels = (k @ camera.T).T
            out.append(pixels[:, :2] / pixels[:, 2:])
        return np.stack(out)

    got = project_points(per_frame_points, poses, k)
    assert got.shape == (frames, n, 2)
    np.testing.assert_allclose(got, one_by_one(lambda f: per_frame_points[f]), rtol=1e-5)
    # One set of points under every frame's pose.
    got = project_points(shared_points, poses, k)
    assert got.shape == (frames, n, 2)
    np.testing.assert_allclose(got, one_by_one(lambda f: shared_points), rtol=1e-5)


def test_pose_matrix_builds_rigid_4x4():
    single = pose_matrix(QUARTER_TURN, np.array([1.0, 2.0, 3.0]))
    assert single.shape == (4, 4) and single.dtype == np.float32
    np.testing.assert_array_equal(single[:3, :3], QUARTER_TURN)
    np.testing.assert_array_equal(single[:, 3], [1, 2, 3, 1])
    np.testing.assert_array_equal(single[3, :3], [0, 0, 0])
    batch = pose_matrix(np.stack([np.eye(3), QUARTER_TURN]), np.array([[0, 0, 1.0], [0, 1.0, 0]]))
    assert batch.shape == (2, 4, 4)
    np.testing.assert_array_equal(batch[1], pose_matrix(QUARTER_TURN, np.array([0, 1.0, 0])))
    # Applied as a homogeneous matrix it is head_to_camera.
    point = np.array([0.3, -0.1, 0.2])
    np.testing.assert_allclose((single @ np.append(point, 1))[:3], head_to_camera(point[None], single)[0],
                               atol=1e-6)


def test_projection_takes_one_intrinsics_per_pose():
    rng = np.random.default_rng(0)
    points = rng.uniform(-0.1, 0.1, (3, 5, 3))
    poses = pose_matrix(np.tile(np.eye(3), (3, 1, 1)), np.array([[0, 0, 1.0], [0.1, 0, 2.0], [0, 0.1, 3.0]]))
    intrinsics = np.stack([centred_intrinsics(f, 64, 48) for f in (50.0, 80.0, 120.0)])
    together = project_points(points, poses, intrinsics)
    one_by_one = np.stack([project_points(points[i], poses[i], intrinsics[i]) for i in range(3)])
    assert np.allclose(together, one_by_one)
