"""Geometry modes planned without Blender: what each keys and the error it reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from faceadapt.backend.formats.errors import BadInput
from faceadapt.backend.formats.results_dir import Results
from faceadapt.blender_addon.geometry_plan import plan_geometry, recommended_mode

RNG = np.random.default_rng(3)
REST = RNG.normal(0, 0.05, (40, 3)).astype(np.float32)
SHAPES = {name: RNG.normal(0, 0.01, (40, 3)).astype(np.float32)
          for name in ("jawOpen", "eyeBlinkLeft", "eyeLookUpLeft", "eyeLookDownLeft")}


def results_of(weights: np.ndarray | None, names: list[str], vertices: np.ndarray) -> Results:
    tracking = {"frames": np.arange(len(vertices)), "vertices": vertices}
    if weights is not None:
        tracking |= {"weights": weights.astype(np.float32), "weight_names": np.array(names)}
    return Results(Path("/results"), {}, tracking, {})


def blend(weights: np.ndarray, names: list[str]) -> np.ndarray:
    return REST + np.einsum("fk,kvc->fvc", weights, np.stack([SHAPES[n] for n in names]))


def test_arkit_curves_are_exact_for_weights_the_head_can_play():
    names = ["jawOpen", "eyeBlinkLeft", "eyeLookUpLeft"]
    weights = RNG.uniform(0, 1, (5, 3))
    plan = plan_geometry("arkit", results_of(weights, names, blend(weights, names)), REST, SHAPES,
                         has_controls=True)
    # Jaw and gaze go through the bones; the blink is keyed directly.
    assert set(plan.key_values) == {"eyeBlinkLeft"}
    assert plan.bases["jawOpen"].tolist() == [0.0] * 5
    assert plan.error_max_m < 1e-6


def test_arkit_curves_report_what_the_bones_lose():
    # Looking up and down at once cannot be posed by one eye bone: the error says so.
    names = ["eyeLookUpLeft", "eyeLookDownLeft"]
    weights = np.array([[0.5, 0.5]])
    plan = plan_geometry("arkit", results_of(weights, names, blend(weights, names)), REST, SHAPES,
                         has_controls=True)
    expected = np.linalg.norm(0.5 * SHAPES["eyeLookUpLeft"] + 0.5 * SHAPES["eyeLookDownLeft"],
                              axis=-1)
    assert plan.error_max_m == pytest.approx(expected.max(), rel=1e-5)
    # A head without the face controls keys both sliders: nothing lost.
    plan = plan_geometry("arkit", results_of(weights, names, blend(weights, names)), REST, SHAPES,
                         has_controls=False)
    assert set(plan.key_values) == set(names) and plan.error_max_m < 1e-6


def test_exact_modes_give_driven_keys_a_base_equal_to_their_bone():
    names = ["jawOpen"]
    weights = np.array([[0.2], [0.7]])
    plan = plan_geometry("shape-keys", results_of(weights, names, blend(weights, names)), REST,
                         SHAPES, has_controls=True)
    np.testing.assert_allclose(plan.bases["jawOpen"], [0.2, 0.7])
    assert plan.key_values == {} and plan.error_max_m == 0.0


def test_compact_basis_error_is_within_its_tolerance():
    names = list(SHAPES)
    weights = RNG.uniform(0, 1, (30, 4))
    plan = plan_geometry("compact", results_of(weights, names, blend(weights, names)), REST, SHAPES,
                         has_controls=True)
    assert plan.compact is not None and plan.compact.num_components <= 4
    assert plan.error_max_m <= 0.0002


def test_arkit_curves_need_weights():
    with pytest.raises(BadInput, match="has no ARKit weights"):
        plan_geometry("arkit", results_of(None, [], REST[None]), REST, SHAPES, has_controls=True)
    with pytest.raises(BadInput, match="unknown geometry mode"):
        plan_geometry("blend", results_of(None, [], REST[None]), REST, SHAPES, has_controls=True)


def test_recommended_mode_grows_out_of_shape_keys():
    assert recommended_mode(250, 10_000) == "shape-keys"
    assert recommended_mode(1_000, 10_000) == "point-cache"
