"""Import planning without Blender: scene frames, the static camera, the head's world motion,
and the head-bone basis that reproduces it, checked with plain numpy the way Blender poses and
projects (a skinned vertex: armature_world @ bone_rest @ basis @ inv(bone_rest) @ v; a camera
looking down its local -Z with +Y up)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import square_head_fields
from faceadapt.backend.formats.camera import pose_matrix, project_points
from faceadapt.backend.formats.results_dir import Results
from faceadapt.blender_addon.camera_conversion import intrinsics_from_blender_camera
from faceadapt.blender_addon.results_import import bone_basis, plan_import

WIDTH, HEIGHT = 640, 360
K = np.array([[700.0, 0, 330.0], [0, 700.0, 170.0], [0, 0, 1]])
# Facing the camera: head +X -> camera +X, head +Z (up) -> camera -Y (down), head -Y (the face's
# direction) -> camera -Z (toward the camera).
FACING_CAMERA = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])


def rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues: a rotation by `angle` radians about `axis`."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


def rigid(rotation_matrix: np.ndarray, translation, scale: float = 1.0) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3], matrix[:3, 3] = scale * rotation_matrix, translation
    return matrix


def transform(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(..., N, 3) points under a (..., 4, 4) matrix."""
    return points @ np.swapaxes(matrix[..., :3, :3], -1, -2) + matrix[..., None, :3, 3]


def tracked_results(first_frame: int = 10, frames: int = 5) -> Results:
    """A head turning and moving in front of a static camera (poses head space -> OpenCV camera)."""
    rng = np.random.default_rng(4)
    poses = np.stack([pose_matrix(rotation([0, 0, 1], 0.1 * t) @ FACING_CAMERA
                                  @ rotation([1, 0, 0], 0.05 * t),
                                  np.array([0.02 * t, 0.1 - 0.01 * t, 0.6 + 0.02 * t]))
                      for t in range(frames)]).astype(np.float64)
    vertices = rng.normal(0, 0.05, (frames, 6, 3)) + np.array([0, -0.05, 0.12])
    document = {"schema": 1, "topology_hash": "0" * 16,
                "source": {"path": "/clips/actor.mp4", "width": WIDTH, "height": HEIGHT}}
    tracking = {"frames": np.arange(first_frame, first_frame + frames, dtype=np.int64),
                "vertices": vertices.astype(np.float32), "head_pose": poses.astype(np.float32),
                "intrinsics": K.astype(np.float32)}
    return Results(Path("/results"), document, tracking, mesh={})


def blender_pixels(camera_world: np.ndarray, camera_k: np.ndarray, world: np.ndarray) -> np.ndarray:
    """Pixels (N, 2) where a Blender camera (matrix_world, looking down local -Z, +Y up) with
    intrinsics `camera_k` (0-based pixel centres) sees world points (N, 3)."""
    local = transform(np.linalg.inv(camera_world), world)
    depth = -local[:, 2]
    assert (depth > 0).all(), "points behind the camera"
    u = camera_k[0, 2] + camera_k[0, 0] * local[:, 0] / depth
    v = camera_k[1, 2] - camera_k[1, 1] * local[:, 1] / depth  # image rows go down, +Y goes up
    return np.column_stack([u, v])


def test_scene_frames_follow_the_strip_offset():
    plan = plan_import(tracked_results(first_frame=10), first_scene_frame_of_source_zero=101)
    assert plan.scene_frames.tolist() == [111, 112, 113, 114, 115]
    plan = plan_import(tracked_results(first_frame=0), first_scene_frame_of_source_zero=-3)
    assert plan.scene_frames.tolist() == [-3, -2, -1, 0, 1]


def test_the_head_is_at_the_origin_upright_at_the_first_tracked_frame():
    plan = plan_import(tracked_results(), 1)
    np.testing.assert_allclose(plan.head_world[0], np.eye(4), atol=1e-6)
    camera = plan.camera_world
    np.testing.assert_allclose(camera[:3, :3] @ camera[:3, :3].T, np.eye(3), atol=1e-6)
    assert np.linalg.det(camera[:3, :3]) == pytest.approx(1.0)
    # The camera stands in front of the face (the face looks toward -Y), at the head's height,
    # looking at it: its -Z axis points toward the origin.
    position = camera[:3, 3]
    assert position[1] < -0.5 and abs(position[2] - 0.1) < 1e-6
    assert np.dot(-camera[:3, 2], -position / np.linalg.norm(position)) > 0.9


def test_the_plan_reproduces_the_footage_view_in_every_frame():
    results = tracked_results()
    plan = plan_import(results, 1)
    cam = plan.camera
    assert (cam.resolution_x, cam.resolution_y) == (WIDTH, HEIGHT)
    camera_k = intrinsics_from_blender_camera(cam.lens_mm, cam.sensor_width_mm, 24.0, cam.sensor_fit,
                                              cam.shift_x, cam.shift_y, WIDTH, HEIGHT)
    np.testing.assert_allclose(camera_k, K, atol=1e-9)
    for t in range(len(results.frames)):
        vertices = results.vertices[t].astype(np.float64)
        world = transform(plan.head_world[t], vertices)
        expected = project_points(vertices, results.head_pose[t].astype(np.float64), K)
        np.testing.assert_allclose(blender_pixels(plan.camera_world, camera_k, world), expected,
                                   atol=1e-3, err_msg=f"frame {t}")
    # Rigid motion: the head keeps its size.
    for head in plan.head_world:
        np.testing.assert_allclose(head[:3, :3] @ head[:3, :3].T, np.eye(3), atol=1e-5)


BONE_REST = rigid(rotation([1, 0, 0], np.pi / 2), [0.0, 0.02, 0.05])  # a neck bone pointing up (+Z)
ARMATURES = {
    "at the origin": np.eye(4),
    "moved and turned": rigid(rotation([0.3, -1, 0.5], 1.1), [1.5, -2.0, 0.3]),
    "scaled": rigid(rotation([0, 0, 1], -0.4), [0.0, 0.5, 0.0], scale=2.5),
}


def blender_skinned(armature_world: np.ndarray, basis: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """World positions of vertices (N, 3) fully weighted to a parentless bone posed with `basis`
    (Blender: pose matrix = bone_rest @ basis; deform = pose @ inv(bone_rest))."""
    return transform(armature_world @ BONE_REST @ basis @ np.linalg.inv(BONE_REST), vertices)


@pytest.mark.parametrize("placement", sorted(ARMATURES))
def test_bone_basis_moves_a_skinned_vertex_where_head_world_puts_it(placement):
    armature = ARMATURES[placement]
    rng = np.random.default_rng(5)
    head_world = np.stack([armature @ rigid(rotation(rng.normal(size=3), rng.uniform(0, 1)),
                                            rng.normal(0, 0.2, 3)) for _ in range(4)])
    vertices = rng.normal(0, 0.1, (8, 3))
    basis = bone_basis(head_world, armature, BONE_REST)
    assert basis.shape == (4, 4, 4)
    for t in range(4):
        np.testing.assert_allclose(blender_skinned(armature, basis[t], vertices),
                                   transform(head_world[t], vertices), atol=1e-9, err_msg=f"frame {t}")
    # The basis is a rotation and translation (what loc/rot keys can hold).
    np.testing.assert_allclose(basis[:, :3, :3] @ np.swapaxes(basis[:, :3, :3], 1, 2),
                               np.broadcast_to(np.eye(3), (4, 3, 3)), atol=1e-9)


def test_bone_basis_is_the_rest_pose_when_the_head_sits_with_its_rig():
    armature = ARMATURES["moved and turned"]
    basis = bone_basis(armature[None], armature, BONE_REST)
    np.testing.assert_allclose(basis[0], np.eye(4), atol=1e-12)


@pytest.mark.parametrize("placement", sorted(ARMATURES))
def test_planned_head_motion_through_the_bone_lands_on_the_tracked_pixels(placement):
    """The whole import in numpy, as scene_import writes it (frame shape key, head-bone keys
    from bone_basis with the rig where the user put it, camera at plan.camera_world): every
    vertex lands on the pixel the tracker reported."""
    results = tracked_results()
    plan = plan_import(results, 1)
    cam = plan.camera
    camera_k = intrinsics_from_blender_camera(cam.lens_mm, cam.sensor_width_mm, 24.0, cam.sensor_fit,
                                              cam.shift_x, cam.shift_y, WIDTH, HEIGHT)
    armature = ARMATURES[placement]
    basis = bone_basis(plan.head_world, armature, BONE_REST)
    for t in range(len(results.frames)):
        vertices = results.vertices[t].astype(np.float64)
        world = blender_skinned(armature, basis[t], vertices)
        expected = project_points(vertices, results.head_pose[t].astype(np.float64), K)
        np.testing.assert_allclose(blender_pixels(plan.camera_world, camera_k, world), expected,
                                   atol=1e-3, err_msg=f"frame {t}")


# --- Import Results refuses broken results with the file and field, the scene unchanged ---

def _square_head():
    from faceadapt.backend.formats.head_file import HeadAsset

    return HeadAsset(**square_head_fields())


def _write_results(directory: Path, head, **source) -> Path:
    from faceadapt.backend.formats.results_dir import TrackingArrays, write_arrays, write_summary

    frames = 3
    rng = np.random.default_rng(0)
    pose = np.tile(np.eye(4, dtype=np.float32), (frames, 1, 1))
    pose[:, :3, :3] = FACING_CAMERA
    pose[:, 2, 3] = [0.5, 0.6, 0.7]
    weights = rng.uniform(0, 1, (frames, 1)).astype(np.float32)
    tracking = TrackingArrays(
        frames=np.arange(10, 10 + frames), vertices=head.posed_vertices(weights), head_pose=pose,
        intrinsics=np.array([[60.0, 0, 31.5], [0, 60.0, 23.5], [0, 0, 1]]),
        confidence=np.ones(frames), landmarks_2d=rng.uniform(0, 48, (frames, 68, 2)),
        landmarks_conf=np.ones((frames, 68)), landmarks_fit=rng.uniform(0, 48, (frames, 68, 2)),
        optional={"weights": weights, "weight_names": np.array(head.blendshape_names)})
    directory.mkdir()
    write_arrays(directory, tracking, head)
    write_summary(directory, {"tracker": "landmark-fit", "model": "test-square", "source": {
        "path": "/clips/actor.mp4", "fps": 25.0, "width": 64, "height": 48,
        "frame_range": [10, 12], "frame_count": 40, **source}}, head)
    return directory


def _tracking_with(**changes):
    def rewrite(out: Path) -> None:
        from conftest import rewrite_npz

        with np.load(out / "tracking.npz") as data:
            arrays = {key: data[key] for key in data.files}
        rewrite_npz(out / "tracking.npz", **{k: change(arrays[k]) for k, change in changes.items()})
    return rewrite


def _truncate(out: Path) -> None:
    data = (out / "tracking.npz").read_bytes()
    (out / "tracking.npz").write_bytes(data[: len(data) // 2])


def _edit_document(**changes):
    def edit(out: Path) -> None:
        import json

        document = json.loads((out / "result.json").read_text())
        for key, value in changes.items():
            if value is None:
                document.pop(key)
            else:
                document[key] = value
        (out / "result.json").write_text(json.dumps(document))
    return edit


def _nan_at_end(value: np.ndarray) -> np.ndarray:
    value = value.copy()
    value.reshape(-1)[-1] = np.nan
    return value


def _inf_translation(value: np.ndarray) -> np.ndarray:
    value = value.copy()
    value[1, 0, 3] = np.inf
    return value


BROKEN_RESULTS = {
    "truncated tracking.npz": (_truncate, r"tracking\.npz cannot be read as \.npz"),
    "invalid result.json": (lambda out: (out / "result.json").write_text("{not json"),
                            r"result\.json cannot be read as JSON"),
    "missing source": (_edit_document(source=None), r"result\.json: field 'source\.path' is missing"),
    "source width not pixels": (_edit_document(source={"path": "/clips/actor.mp4", "width": "64",
                                                       "height": 48}),
                                r"result\.json: field 'source\.width' must be a positive number"),
    "zero frames": (_tracking_with(**{k: (lambda v: v[:0]) for k in (
        "frames", "vertices", "head_pose", "confidence", "landmarks_2d", "landmarks_conf",
        "landmarks_fit", "weights")}), r"tracking\.npz holds no frames"),
    "singular head_pose": (_tracking_with(head_pose=lambda v: v * np.array([0, 0, 0, 1], np.float32)),
                           r"tracking\.npz: field 'head_pose' row 0 is not a rigid transform"),
    "wrong vertex shape": (_tracking_with(vertices=lambda v: v[..., :2]),
                           r"tracking\.npz: field 'vertices' must be \(3, None, 3\)"),
    "arrays of different lengths": (_tracking_with(head_pose=lambda v: v[:2]),
                                    r"tracking\.npz: field 'head_pose' must be \(3, 4, 4\)"),
    "NaN vertices": (_tracking_with(vertices=_nan_at_end),
                     r"tracking\.npz: field 'vertices' contains NaN or inf"),
    "infinite pose": (_tracking_with(head_pose=_inf_translation),
                      r"tracking\.npz: field 'head_pose' contains NaN or inf"),
    "skewed intrinsics": (_tracking_with(intrinsics=lambda v: v + np.array([[0, 1, 0], [0, 0, 0],
                                                                            [0, 0, 0]])),
                          r"tracking\.npz: field 'intrinsics': Blender cameras need square pixels"),
}


def _scene_state(head) -> tuple:
    import bpy

    return (len(bpy.data.objects), len(bpy.data.actions), len(bpy.data.cameras),
            len(head.data.shape_keys.key_blocks), [tuple(row) for row in head.matrix_world],
            bpy.context.scene.frame_start, bpy.context.scene.frame_end,
            bpy.context.scene.render.resolution_x, bpy.context.scene.render.resolution_y)


@pytest.fixture
def square_head_in_scene(tmp_path):
    import bpy

    from faceadapt.backend.formats.head_file import save_head
    from faceadapt.blender_addon.head_builder import build_head

    bpy.ops.wm.read_homefile(use_empty=True)
    head = _square_head()
    save_head(head, tmp_path / "head.npz")
    return head, build_head(bpy.context, tmp_path / "head.npz", "test-square")


def test_import_results_of_the_square_head_imports(square_head_in_scene, tmp_path):
    import bpy

    from faceadapt.operators.import_results import import_results_onto

    head, head_object = square_head_in_scene
    cameras = len(bpy.data.cameras)
    import_results_onto(bpy.context, head_object, _write_results(tmp_path / "out", head), [])
    assert len(bpy.data.cameras) == cameras + 1


@pytest.mark.parametrize("broken", list(BROKEN_RESULTS))
def test_import_results_refuses_broken_results_naming_file_and_field(square_head_in_scene,
                                                                    tmp_path, broken):
    import bpy

    from faceadapt.blender_addon.backend_job import UserError
    from faceadapt.operators.import_results import import_results_onto

    head, head_object = square_head_in_scene
    out = _write_results(tmp_path / "out", head)
    breaking, message = BROKEN_RESULTS[broken]
    breaking(out)
    before = _scene_state(head_object)
    with pytest.raises(UserError, match=message):
        import_results_onto(bpy.context, head_object, out, [])
    assert _scene_state(head_object) == before


def test_import_of_rotated_phone_footage_sizes_the_scene_as_displayed(square_head_in_scene,
                                                                      tmp_path):
    """Blender shows a movie with a display matrix rotated; `track` records the displayed size
    (tests/backend/test_footage.py), and the scene must take it: before, a 480x512 background
    sat under a 512x480 scene."""
    import subprocess

    import bpy

    from faceadapt.operators.import_results import import_results_onto

    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")  # not in the Blender 5.3 test env
    clip = tmp_path / "portrait.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                    "testsrc=size=512x480:rate=25:duration=1", "-pix_fmt", "yuv420p",
                    str(tmp_path / "stored.mp4")], check=True,
                   timeout=120)
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-display_rotation:v:0", "90",
                    "-i", str(tmp_path / "stored.mp4"), "-c", "copy", str(clip)], check=True,
                   timeout=120)
    head, head_object = square_head_in_scene
    out = _write_results(tmp_path / "out", head, path=str(clip), width=480, height=512,
                         rotation=270)
    import_results_onto(bpy.context, head_object, out, [])
    scene = bpy.context.scene
    background = scene.camera.data.background_images[0].clip
    assert (scene.render.resolution_x, scene.render.resolution_y) == (480, 512)
    assert tuple(background.size) == (480, 512)
