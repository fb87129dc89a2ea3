"""blender_addon.retarget_plan: ARKit weights onto a target's shape keys (matching, bounds,
smoothing, the report) and the head's motion onto a bone of any rest orientation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from faceadapt.blender_addon.retarget_plan import (
    bone_pose_keys,
    format_report,
    head_motion,
    moving_average,
    plan_retarget,
    rotation_quaternions,
)

NAMES = ["jawOpen", "eyeBlinkLeft", "eyeBlinkRight", "mouthSmileLeft"]
TARGET = ["jawOpen", "EyeBlink_L", "eye_blink_right", "mySmile"]  # without the reference key


def rotation(axis: list[float], angle: float) -> np.ndarray:
    """Rodrigues: a rotation by `angle` radians about `axis`."""
    axis_ = np.asarray(axis, float) / np.linalg.norm(axis)
    cross = np.array([[0, -axis_[2], axis_[1]], [axis_[2], 0, -axis_[0]], [-axis_[1], axis_[0], 0]])
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


def rigid(rot: np.ndarray, translation: list[float]) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3] = rot
    matrix[:3, 3] = translation
    return matrix


def quaternion_matrix(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def weights(frames: int = 6) -> np.ndarray:
    t = np.arange(frames)
    return np.stack([np.sin(t / frames * math.pi), (t >= 3).astype(float), 0.25 + 0 * t,
                     0.5 + 0 * t], axis=1)


def test_matched_keys_get_their_channels_values_in_the_targets_order() -> None:
    plan = plan_retarget(weights(), NAMES, TARGET)
    assert list(plan.values) == ["jawOpen", "EyeBlink_L", "eye_blink_right"]
    np.testing.assert_allclose(plan.values["jawOpen"], weights()[:, 0])
    np.testing.assert_allclose(plan.values["EyeBlink_L"], weights()[:, 1])
    np.testing.assert_allclose(plan.values["eye_blink_right"], 0.25)
    report = plan.report()
    json.dumps(report)  # stored on the target as JSON
    assert [(row["channel"], row["shape_key"]) for row in report["matched"]] == [
        ("jawOpen", "jawOpen"), ("eyeBlinkLeft", "EyeBlink_L"), ("eyeBlinkRight", "eye_blink_right")]
    assert report["unmatched_channels"] == ["mouthSmileLeft"]
    assert report["unmatched_shape_keys"] == ["mySmile"]
    assert report["ambiguous"] == []
    assert plan.summary() == ("3 shape key(s) driven, 1 shape key(s) unmatched, "
                              "1 ARKit channel(s) unmatched")
    table = format_report(report)
    assert "eyeBlinkLeft" in table and "EyeBlink_L" in table and "mySmile" in table


def test_ambiguous_names_are_reported_and_left_alone() -> None:
    plan = plan_retarget(weights(), NAMES, ["jawOpen", "eyeBlink_L", "EyeBlinkL"])
    assert list(plan.values) == ["jawOpen"]
    report = plan.report()
    assert report["ambiguous"] == [{"canonical": "eyeblinkleft", "channels": ["eyeBlinkLeft"],
                                    "shape_keys": ["eyeBlink_L", "EyeBlinkL"]}]
    assert "ambiguous" in plan.summary() and "eyeBlink_L/EyeBlinkL" in plan.summary()


def test_bounds_clamp_and_count_the_frames_they_changed() -> None:
    plan = plan_retarget(weights(), NAMES, TARGET, lower=0.2, upper=0.6)
    jaw = weights()[:, 0]
    np.testing.assert_allclose(plan.values["jawOpen"], np.clip(jaw, 0.2, 0.6))
    assert plan.clamped["jawOpen"] == int(((jaw < 0.2) | (jaw > 0.6)).sum())
    assert plan.clamped["eye_blink_right"] == 0
    # A channel's own bounds override the default ones.
    plan = plan_retarget(weights(), NAMES, TARGET, bounds={"eyeBlinkLeft": (0.0, 0.5)})
    np.testing.assert_allclose(plan.values["EyeBlink_L"], np.minimum(weights()[:, 1], 0.5))
    np.testing.assert_allclose(plan.values["jawOpen"], jaw)
    assert plan.report()["matched"][1]["upper"] == 0.5
    with pytest.raises(ValueError, match="above its upper bound"):
        plan_retarget(weights(), NAMES, TARGET, lower=0.8, upper=0.2)
    with pytest.raises(ValueError, match="above its upper bound"):
        plan_retarget(weights(), NAMES, TARGET, bounds={"jawOpen": (1.0, 0.0)})


def test_moving_average_is_centred_and_cut_short_at_the_ends() -> None:
    values = np.array([0.0, 0.0, 3.0, 0.0, 0.0, 6.0])
    np.testing.assert_allclose(moving_average(values, 3), [0, 1, 1, 1, 2, 3])
    np.testing.assert_allclose(moving_average(values, 2), moving_average(values, 3))  # even: odd
    np.testing.assert_allclose(moving_average(values, 0), values)
    np.testing.assert_allclose(moving_average(values, 1), values)
    np.testing.assert_allclose(moving_average(values, 99), np.full(6, 1.5))
    table = np.stack([values, 2 * values], axis=1)
    np.testing.assert_allclose(moving_average(table, 3)[:, 1], 2 * moving_average(values, 3))
    with pytest.raises(ValueError, match="0 or more"):
        moving_average(values, -1)


def test_smoothing_comes_before_the_bounds() -> None:
    steps = np.array([[0.0], [0.0], [2.0], [2.0]])
    plan = plan_retarget(steps, ["jawOpen"], ["jawOpen"], smoothing=3)
    np.testing.assert_allclose(plan.values["jawOpen"], [0, 2 / 3, 1, 1])
    assert plan.report()["smoothing"] == 3


def test_shape_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match=r"must be \(frames, 3\)"):
        plan_retarget(np.zeros((4, 2)), ["jawOpen", "a", "b"], ["jawOpen"])


def test_quaternions_of_rotations() -> None:
    rng = np.random.default_rng(3)
    rotations = [rotation(rng.normal(size=3), angle) for angle in (0.0, 0.3, 2.0, 3.1, math.pi)]
    rotations += [np.diag([1.0, -1.0, -1.0]), np.diag([-1.0, 1.0, -1.0]), np.diag([-1.0, -1.0, 1.0])]
    quaternions = rotation_quaternions(np.array(rotations))
    for q, r in zip(quaternions, rotations, strict=True):
        assert np.linalg.norm(q) == pytest.approx(1.0)
        assert q[0] >= 0
        np.testing.assert_allclose(quaternion_matrix(q), r, atol=1e-12)


def test_head_motion_is_relative_to_the_first_frame() -> None:
    camera = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # head facing the camera
    poses = np.array([rigid(camera @ rotation([0, 0, 1], yaw), [0.01 * i, 0, 0.6])
                      for i, yaw in enumerate([0.2, 0.5, -0.1])])
    motion = head_motion(poses)
    np.testing.assert_allclose(motion[0], np.eye(4), atol=1e-12)
    np.testing.assert_allclose(motion[1][:3, :3], rotation([0, 0, 1], 0.3), atol=1e-12)
    np.testing.assert_allclose(motion[2][:3, :3], rotation([0, 0, 1], -0.3), atol=1e-12)
    with pytest.raises(ValueError, match=r"\(frames, 4, 4\)"):
        head_motion(np.zeros((0, 4, 4)))


@pytest.mark.parametrize("bone_axis", [[0, 0, 1], [1, 0, 0], [0.3, -0.5, 0.8]])
def test_a_bone_of_any_rest_orientation_turns_as_the_head_does(bone_axis: list[float]) -> None:
    rng = np.random.default_rng(7)
    poses = np.array([rigid(rotation(rng.normal(size=3), rng.uniform(0, 2)), rng.normal(size=3))
                      for _ in range(5)])
    rest = rigid(rotation(bone_axis, 1.1) @ rotation([0, 1, 0], 0.4), [0.2, -0.1, 1.5])
    keys = bone_pose_keys(poses, rest)
    motion = head_motion(poses)
    for t in range(len(poses)):
        posed = rest @ keys.basis[t]  # armature-space pose, parent at rest
        # Turned by the head's rotation in armature axes, about the bone's own head.
        np.testing.assert_allclose(posed[:3, :3], motion[t, :3, :3] @ rest[:3, :3], atol=1e-10)
        np.testing.assert_allclose(posed[:3, 3], rest[:3, 3], atol=1e-10)
        np.testing.assert_allclose(quaternion_matrix(keys.quaternions[t]), keys.basis[t, :3, :3],
                                   atol=1e-10)
    np.testing.assert_allclose(keys.locations, 0)
    assert (np.einsum("ij,ij->i", keys.quaternions[1:], keys.quaternions[:-1]) >= 0).all()


def test_location_moves_the_bone_by_the_pivots_displacement_in_armature_units() -> None:
    poses = np.array([rigid(np.eye(3), [0, 0, 1]), rigid(rotation([0, 0, 1], 0.5), [0.1, 0.2, 1.3])])
    rest = rigid(rotation([1, 0, 0], -math.pi / 2), [0, 0, 1.6])
    keys = bone_pose_keys(poses, rest, units_per_metre=100.0, with_location=True)
    posed = rest @ keys.basis[1]
    displacement = head_motion(poses)[1, :3, 3]
    np.testing.assert_allclose(posed[:3, 3] - rest[:3, 3], 100 * displacement, atol=1e-9)
    np.testing.assert_allclose(keys.locations[0], 0, atol=1e-12)
    with pytest.raises(ValueError, match="rigid"):
        bone_pose_keys(poses, np.diag([2.0, 1, 1, 1]))
