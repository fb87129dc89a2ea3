"""Matching ARKit channels to a target mesh's shape keys under the spellings rigs use."""

from __future__ import annotations

import pytest

from faceadapt.blender_addon.arkit_names import (
    ARKIT_NAMES,
    AmbiguousMatch,
    canonical_name,
    match_shape_keys,
)

BLINK_VARIANTS = ["eyeBlink_L", "EyeBlinkLeft", "eyeBlinkLeft", "eye_blink_left", "EyeBlink_L",
                  "eyeBlinkL", "eyeBlink.L", "Eye_Blink_Left", "EYE_BLINK_LEFT", "eyeBlink-Left",
                  "eye blink left"]


def test_arkit_names_are_the_52_in_apple_spelling() -> None:
    assert len(ARKIT_NAMES) == len(set(ARKIT_NAMES)) == 52
    assert {"eyeBlinkLeft", "jawOpen", "browInnerUp", "tongueOut", "mouthLeft"} <= set(ARKIT_NAMES)
    # No two channels share a canonical form, so a mesh with all 52 matches one to one.
    assert len({canonical_name(name) for name in ARKIT_NAMES}) == 52


@pytest.mark.parametrize("variant", BLINK_VARIANTS)
def test_each_variant_matches_eye_blink_left(variant: str) -> None:
    assert canonical_name(variant) == canonical_name("eyeBlinkLeft") == "eyeblinkleft"
    match = match_shape_keys(["Basis", variant, "eyeBlinkRight"], list(ARKIT_NAMES))
    assert match.pairs["eyeBlinkLeft"] == variant
    assert match.pairs["eyeBlinkRight"] == "eyeBlinkRight"
    assert match.unmatched_targets == ["Basis"]
    assert not match.ambiguous


def test_right_side_and_one_sided_channels() -> None:
    targets = ["mouthSmile_R", "jaw_open", "mouth_L", "cheekPuff", "browOuterUp.R"]
    match = match_shape_keys(targets, list(ARKIT_NAMES))
    assert match.pairs == {"mouthSmileRight": "mouthSmile_R", "jawOpen": "jaw_open",
                           "mouthLeft": "mouth_L", "cheekPuff": "cheekPuff",
                           "browOuterUpRight": "browOuterUp.R"}
    assert len(match.unmatched_sources) == 52 - 5
    assert "eyeBlinkLeft" in match.unmatched_sources


def test_non_arkit_and_split_keys_stay_unmatched() -> None:
    # ICT's split browInnerUp_L is not ARKit's browInnerUp; a duplicated key's .001 is not the key.
    targets = ["Basis", "smile_big", "browInnerUp_L", "jawOpen.001"]
    match = match_shape_keys(targets, list(ARKIT_NAMES))
    assert match.pairs == {}
    assert match.unmatched_targets == targets
    assert "browInnerUp" in match.unmatched_sources and "jawOpen" in match.unmatched_sources


def test_ambiguity_reported_not_guessed() -> None:
    match = match_shape_keys(["eyeBlink_L", "Eye_Blink_Left", "jawOpen"], ["eyeBlinkLeft", "jawOpen"])
    assert match.pairs == {"jawOpen": "jawOpen"}
    assert match.ambiguous == [AmbiguousMatch("eyeblinkleft", ("eyeBlinkLeft",),
                                              ("eyeBlink_L", "Eye_Blink_Left"))]
    assert match.unmatched_targets == [] and match.unmatched_sources == []
    # Two source channels of one form: also reported.
    both = match_shape_keys(["jawOpen"], ["jaw_open", "JawOpen"])
    assert both.pairs == {} and both.ambiguous[0].sources == ("jaw_open", "JawOpen")


def test_identical_spelling_is_not_ambiguous() -> None:
    match = match_shape_keys(["eyeBlink_L", "eyeBlinkLeft"], ["eyeBlinkLeft"])
    assert match.pairs == {"eyeBlinkLeft": "eyeBlinkLeft"}
    assert match.unmatched_targets == ["eyeBlink_L"] and not match.ambiguous
