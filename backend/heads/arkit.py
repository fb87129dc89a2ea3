"""Apple ARKit blendshape names, the spelling every head and tracker in FaceAdapt uses."""

from __future__ import annotations

ARKIT_NAMES = (
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight",
    "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft",
    "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight",
    "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft",
    "noseSneerRight", "tongueOut",
)


def to_arkit_spelling(name: str) -> str:
    """`eyeBlink_L` -> `eyeBlinkLeft`. Names with no ARKit counterpart (ICT's split
    `browInnerUp_L`, `cheekRaiser_L`) are kept as they are: they stay separate channels."""
    for suffix, side in (("_L", "Left"), ("_R", "Right")):
        if name.endswith(suffix) and name[: -len(suffix)] + side in ARKIT_NAMES:
            return name[: -len(suffix)] + side
    return name


def arkit_channel(name: str) -> str | None:
    """The ARKit channel a (possibly split) shape contributes to, e.g. `browInnerUp_L` ->
    `browInnerUp`; None when it has none."""
    if name in ARKIT_NAMES:
        return name
    base = name[:-2] if name.endswith(("_L", "_R")) else name
    return base if base in ARKIT_NAMES else None
