"""OpenCV <-> Blender camera conversion, checked against Blender's own projection."""

import numpy as np
import pytest

from faceadapt.blender_addon.camera_conversion import (
    blender_camera_from_intrinsics,
    blender_matrix_from_opencv_pose,
    intrinsics_from_blender_camera,
    opencv_pose_from_blender,
)

CASES = [  # (K, width, height)
    (np.array([[500.0, 0, 159.5], [0, 500, 119.5], [0, 0, 1]]), 320, 240),
    (np.array([[800.0, 0, 140.0], [0, 800, 300.0], [0, 0, 1]]), 300, 500),
]


@pytest.mark.parametrize(("k", "width", "height"), CASES)
def test_round_trip(k, width, height):
    cam = blender_camera_from_intrinsics(k, width, height)
    back = intrinsics_from_blender_camera(cam.lens_mm, cam.sensor_width_mm, 24.0, cam.sensor_fit,
                                          cam.shift_x, cam.shift_y, width, height)
    np.testing.assert_allclose(back, k, atol=1e-9)
    pose = np.eye(4)
    pose[:3, 3] = [0.1, -0.2, 1.5]
    np.testing.assert_allclose(opencv_pose_from_blender(blender_matrix_from_opencv_pose(pose)), pose,
                               atol=1e-12)


def test_non_square_pixels_are_refused():
    with pytest.raises(ValueError, match="square pixels"):
        blender_camera_from_intrinsics(np.array([[500.0, 0, 10], [0, 400, 10], [0, 0, 1]]), 20, 20)


@pytest.mark.blender
@pytest.mark.parametrize(("k", "width", "height"), CASES)
def test_blender_projects_like_opencv(k, width, height):
    bpy = pytest.importorskip("bpy")
    from bpy_extras.object_utils import world_to_camera_view
    from mathutils import Matrix, Vector

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    cam = blender_camera_from_intrinsics(k, width, height)
    data = bpy.data.cameras.new("cam")
    data.lens, data.sensor_width, data.sensor_fit = cam.lens_mm, cam.sensor_width_mm, cam.sensor_fit
    data.shift_x, data.shift_y = cam.shift_x, cam.shift_y
    obj = bpy.data.objects.new("cam", data)
    scene.collection.objects.link(obj)
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    pose = np.eye(4)
    angle = 0.3
    pose[:3, :3] = [[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]]
    pose[:3, 3] = [0.05, -0.1, 0.8]
    obj.matrix_world = Matrix(blender_matrix_from_opencv_pose(pose).tolist())
    bpy.context.view_layer.update()
    rng = np.random.default_rng(0)
    points = rng.uniform(-0.2, 0.2, (20, 3))
    cam_points = points @ pose[:3, :3].T + pose[:3, 3]
    expected = cam_points @ k.T
    expected = expected[:, :2] / expected[:, 2:]
    for point, want in zip(points, expected, strict=True):
        ndc = world_to_camera_view(scene, obj, Vector(point.tolist()))
        # Blender: (0, 0) bottom-left corner of the frame, (1, 1) top-right.
        got = (ndc.x * width - 0.5, (1 - ndc.y) * height - 0.5)
        np.testing.assert_allclose(got, want, atol=1e-3)
