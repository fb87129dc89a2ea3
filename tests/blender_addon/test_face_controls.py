"""The face controls' mapping between ARKit weights and jaw/eye bone rotations."""

from __future__ import annotations

import numpy as np
import pytest

from faceadapt.backend.formats.head_file import load_head
from faceadapt.blender_addon.face_controls import (
    DRIVEN_KEYS,
    JAW_BONE,
    LEFT_EYE_BONE,
    RIGHT_EYE_BONE,
    bone_angles,
    control_bones,
    driven_values,
)
from faceadapt.blender_addon.head_builder import MODEL_HEAD


def test_single_sided_weights_round_trip_through_the_bones():
    names = [k.key for k in DRIVEN_KEYS]
    rng = np.random.default_rng(0)
    weights = np.zeros((6, len(names)))
    # One of each opposite pair per frame, as a tracker that never looks up and down at once.
    for key in ("jawOpen", "jawLeft", "eyeLookUpLeft", "eyeLookInLeft", "eyeLookDownRight",
                "eyeLookOutRight"):
        weights[:, names.index(key)] = rng.uniform(0, 1, 6)
    values = driven_values(bone_angles(weights, names))
    for i, name in enumerate(names):
        np.testing.assert_allclose(values[name], weights[:, i], atol=1e-12, err_msg=name)


def test_opposite_weights_cancel_and_unknown_keys_count_as_zero():
    angles = bone_angles(np.array([[0.6, 0.2]]), ["eyeLookUpLeft", "eyeLookDownLeft"])
    values = driven_values(angles)
    assert values["eyeLookUpLeft"][0] == pytest.approx(0.4)
    assert values["eyeLookDownLeft"][0] == 0.0
    assert values["jawOpen"][0] == 0.0  # not among the weights


def test_directions_follow_the_bone_axes():
    # +X on an eye looks up; +Z looks toward the head's left: out for the left eye, in for the right.
    angles = bone_angles(np.array([[1.0, 1.0, 1.0]]), ["eyeLookUpLeft", "eyeLookOutLeft",
                                                       "eyeLookInRight"])
    assert angles[(LEFT_EYE_BONE, "ROT_X")][0] > 0
    assert angles[(LEFT_EYE_BONE, "ROT_Z")][0] > 0
    assert angles[(RIGHT_EYE_BONE, "ROT_Z")][0] > 0
    assert bone_angles(np.array([[1.0]]), ["jawOpen"])[(JAW_BONE, "ROT_X")][0] > 0


def test_bones_sit_on_the_head():
    head = load_head(MODEL_HEAD)
    bones = {b.name: b for b in control_bones(head.vertices, head.landmark_vertex, "head")}
    left, right = bones[LEFT_EYE_BONE], bones[RIGHT_EYE_BONE]
    assert left.head[0] > 0 > right.head[0]  # the head's left is +X
    assert abs(left.head[0] + right.head[0]) < 0.005  # symmetric
    jaw = bones[JAW_BONE]
    assert jaw.tail[2] < jaw.head[2] and jaw.tail[1] < jaw.head[1]  # down and forward to the chin
    assert not any(b.deform for b in bones.values())
