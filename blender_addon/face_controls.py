"""The rig's face controls without bpy: where the jaw and eye bones sit on a head, and how their
rotations map to the ARKit shape keys they drive, and back.

A driven shape key's value is `max(0, gain * angle) - base`: `angle` is one local Euler channel
of its bone (radians), `base` a per-frame custom property of the rig. The import keys each bone
from the tracked weights and keys `base` to what the driver reads at that pose when the
geometry itself already carries the expression (per-frame shape keys, point cache, compact
basis), so the driver adds nothing until an animator poses the bone: no double deformation.
With ARKit curves `base` is 0 and the bones alone drive those keys.

Axes (measured on Blender's bones built by head_builder, roll 0): an eye bone points forward
(-Y); +X rotation looks up, +Z looks toward the head's left (+X). The jaw bone points from the
jaw pivot to the chin; +X rotation opens the mouth, +Z moves the chin to the head's right (-X).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

JAW_BONE = "jaw"
LEFT_EYE_BONE = "eye.L"
RIGHT_EYE_BONE = "eye.R"
CONTROL_BONES = (JAW_BONE, LEFT_EYE_BONE, RIGHT_EYE_BONE)

JAW_OPEN_RADIANS = 0.35  # jawOpen = 1 at about 20 degrees, a wide-open mouth
JAW_SIDE_RADIANS = 0.12  # jawLeft/jawRight = 1 at about 7 degrees
EYE_RADIANS = 0.5  # eyeLook* = 1 at about 30 degrees, the eye's comfortable range
EYE_DEPTH_M = 0.012  # eyeball centre behind the mean of the eyelid landmarks

AXIS_INDEX = {"ROT_X": 0, "ROT_Z": 2}


@dataclass(frozen=True)
class DrivenKey:
    """ARKit shape key `key` = max(0, gain * rotation `channel` of `bone`) - base."""

    key: str
    bone: str
    channel: str  # "ROT_X" or "ROT_Z", the bone's local Euler rotation
    gain: float  # weight per radian; its sign picks the direction of rotation

    @property
    def base_property(self) -> str:
        """The rig's custom property holding this key's per-frame base."""
        return f"fa_base_{self.key}"


DRIVEN_KEYS = (
    DrivenKey("jawOpen", JAW_BONE, "ROT_X", 1 / JAW_OPEN_RADIANS),
    DrivenKey("jawRight", JAW_BONE, "ROT_Z", 1 / JAW_SIDE_RADIANS),
    DrivenKey("jawLeft", JAW_BONE, "ROT_Z", -1 / JAW_SIDE_RADIANS),
    DrivenKey("eyeLookUpLeft", LEFT_EYE_BONE, "ROT_X", 1 / EYE_RADIANS),
    DrivenKey("eyeLookDownLeft", LEFT_EYE_BONE, "ROT_X", -1 / EYE_RADIANS),
    DrivenKey("eyeLookOutLeft", LEFT_EYE_BONE, "ROT_Z", 1 / EYE_RADIANS),
    DrivenKey("eyeLookInLeft", LEFT_EYE_BONE, "ROT_Z", -1 / EYE_RADIANS),
    DrivenKey("eyeLookUpRight", RIGHT_EYE_BONE, "ROT_X", 1 / EYE_RADIANS),
    DrivenKey("eyeLookDownRight", RIGHT_EYE_BONE, "ROT_X", -1 / EYE_RADIANS),
    DrivenKey("eyeLookInRight", RIGHT_EYE_BONE, "ROT_Z", 1 / EYE_RADIANS),
    DrivenKey("eyeLookOutRight", RIGHT_EYE_BONE, "ROT_Z", -1 / EYE_RADIANS),
)
DRIVEN_KEY_NAMES = frozenset(k.key for k in DRIVEN_KEYS)


@dataclass(frozen=True)
class BoneSpec:
    name: str
    head: tuple[float, float, float]  # head space, metres
    tail: tuple[float, float, float]
    parent: str | None
    deform: bool


def control_bones(vertices: np.ndarray, landmark_vertex: np.ndarray, parent: str,
                  ) -> tuple[BoneSpec, ...]:
    """The jaw and eye bones of a head: vertices (V, 3) metres in head space, landmark_vertex
    (68,) the iBUG-68 landmarks' vertex indices. The jaw pivots at the height of the jaw
    contour's top (landmarks 0 and 16, by the ears) and points at the chin (8); each eye sits
    EYE_DEPTH_M behind its eyelid landmarks (36-41 the head's right eye, 42-47 its left) and
    points forward. None deforms: they drive shape keys."""
    points = np.asarray(vertices, np.float64)[np.asarray(landmark_vertex)]
    ears = (points[0] + points[16]) / 2
    pivot = np.array([0.0, ears[1], ears[2] - 0.01])
    bones = [BoneSpec(JAW_BONE, _tuple(pivot), _tuple(np.array([0.0, *points[8][1:]])), parent,
                      False)]
    for name, rows in ((RIGHT_EYE_BONE, slice(36, 42)), (LEFT_EYE_BONE, slice(42, 48))):
        centre = points[rows].mean(axis=0) + np.array([0.0, EYE_DEPTH_M, 0.0])
        bones.append(BoneSpec(name, _tuple(centre), _tuple(centre - np.array([0.0, 0.02, 0.0])),
                              parent, False))
    return tuple(bones)


def _tuple(point: np.ndarray) -> tuple[float, float, float]:
    return (float(point[0]), float(point[1]), float(point[2]))


def bone_angles(weights: np.ndarray, names: list[str]) -> dict[tuple[str, str], np.ndarray]:
    """Per-frame local rotations (radians) of the control bones posed from ARKit weights (F, K)
    named `names`: each channel is the difference of its two opposite keys (jawOpen has none)
    over their gain. Keys a head lacks count as 0."""
    column = {name: i for i, name in enumerate(names)}
    frames = weights.shape[0]
    angles: dict[tuple[str, str], np.ndarray] = {}
    for key in DRIVEN_KEYS:
        channel = angles.setdefault((key.bone, key.channel), np.zeros(frames))
        if key.key in column:
            channel += weights[:, column[key.key]] / key.gain
    return angles


def driven_values(angles: dict[tuple[str, str], np.ndarray]) -> dict[str, np.ndarray]:
    """What each driven key's driver reads (before its base) at these bone angles: (F,) each."""
    return {key.key: np.maximum(0.0, key.gain * angles[(key.bone, key.channel)])
            for key in DRIVEN_KEYS}


def driver_expression(key: DrivenKey) -> str:
    """The driver of `key` in Blender's simple-expression subset (no Python needed, so it runs
    with Auto Run Python Scripts off): variables `angle` and `base`."""
    return f"max(0.0, {key.gain!r} * angle) - base"
