"""The compact basis: PCA of a clip's vertices, checked on synthetic motion of known rank."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from faceadapt.blender_addon import compact_basis
from faceadapt.blender_addon.compact_basis import fit_compact_basis

FRAMES, VERTICES = 60, 200


def synthetic_clip(amplitudes_m: list[float], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (F, V, 3) float32, rest (V, 3)): a rest head 10 cm across plus one random
    motion pattern per amplitude (each vertex's peak displacement of order the amplitude),
    driven by smooth, independent curves."""
    rng = np.random.default_rng(seed)
    rest = rng.uniform(-0.1, 0.1, (VERTICES, 3))
    time = np.linspace(0, 1, FRAMES)
    clip = np.repeat(rest[None], FRAMES, axis=0)
    for k, amplitude in enumerate(amplitudes_m):
        pattern = rng.normal(0, amplitude / 2, (VERTICES, 3))
        curve = np.sin(2 * np.pi * (k + 1) * time + rng.uniform(0, 6))
        clip += curve[:, None, None] * pattern
    return clip.astype(np.float32), rest.astype(np.float32)


def max_error_with(vertices: np.ndarray, rest: np.ndarray, count: int) -> float:
    return fit_compact_basis(vertices, rest, max_components=count).max_error


def test_recovers_exactly_k_dimensional_motion() -> None:
    vertices, rest = synthetic_clip([0.01, 0.006, 0.003, 0.002])
    basis = fit_compact_basis(vertices, rest, max_components=4)
    assert basis.components.shape == (4, VERTICES, 3) and basis.weights.shape == (FRAMES, 4)
    assert basis.components.dtype == np.float32 and basis.weights.dtype == np.float32
    assert basis.max_error < 2e-6
    np.testing.assert_allclose(basis.reconstruct(), vertices, atol=2e-6)
    # The reported error is the distance of what Blender would play from the input.
    played = basis.rest + basis.mean_offset + np.tensordot(basis.weights, basis.components, 1)
    distance = np.linalg.norm(played - vertices, axis=2)
    np.testing.assert_allclose(basis.frame_max_error, distance.max(axis=1), atol=1e-7)
    np.testing.assert_allclose(basis.frame_mean_error, distance.mean(axis=1), atol=1e-7)
    # Asking for more than the motion holds adds nothing: float32 noise is not a component.
    assert fit_compact_basis(vertices, rest, max_components=10).num_components == 4


def test_error_decreases_with_component_count() -> None:
    vertices, rest = synthetic_clip([0.01, 0.005, 0.002, 0.001, 0.0005])
    errors = [max_error_with(vertices, rest, count) for count in range(6)]
    assert all(later < earlier for earlier, later in itertools.pairwise(errors))
    assert errors[0] > 5e-3 and errors[5] < 2e-6


def test_tolerance_picks_the_smallest_count() -> None:
    vertices, rest = synthetic_clip([0.01, 0.005, 0.002, 0.001, 0.0005])
    tolerance = 1.5e-3
    basis = fit_compact_basis(vertices, rest, max_components=5, tolerance_m=tolerance)
    count = basis.num_components
    assert 1 <= count < 5
    assert basis.max_error <= tolerance
    assert max_error_with(vertices, rest, count - 1) > tolerance
    # The same components as asked for by count.
    by_count = fit_compact_basis(vertices, rest, max_components=count)
    np.testing.assert_array_equal(basis.components, by_count.components)
    # A tolerance the cap cannot reach: the cap, with the error it leaves reported.
    capped = fit_compact_basis(vertices, rest, max_components=2, tolerance_m=1e-6)
    assert capped.num_components == 2 and capped.max_error > 1e-6
    # A tolerance the mean alone meets: no components.
    assert fit_compact_basis(vertices, rest, max_components=5, tolerance_m=1.0).num_components == 0


def test_weights_within_unit_range_and_components_deterministic() -> None:
    vertices, rest = synthetic_clip([0.01, 0.004, 0.002])
    basis = fit_compact_basis(vertices, rest, max_components=3)
    np.testing.assert_allclose(np.abs(basis.weights).max(axis=0), 1.0, atol=1e-6)
    assert np.abs(basis.weights).max() <= 1.0
    again = fit_compact_basis(vertices.copy(), rest, max_components=3)
    np.testing.assert_array_equal(again.components, basis.components)
    # Sign rule: each component's largest-magnitude coordinate is positive.
    flat = basis.components.reshape(3, -1)
    assert (flat[np.arange(3), np.abs(flat).argmax(axis=1)] > 0).all()


def test_single_frame_and_still_clip_have_no_components() -> None:
    vertices, rest = synthetic_clip([0.01])
    single = fit_compact_basis(vertices[:1], rest, max_components=8)
    assert single.num_components == 0 and single.weights.shape == (1, 0)
    np.testing.assert_array_equal(single.mean, vertices[0])
    assert single.max_error == 0.0
    still = np.repeat(vertices[:1], 5, axis=0)
    fit = fit_compact_basis(still, rest, max_components=3, tolerance_m=1e-4)
    assert fit.num_components == 0 and fit.max_error == 0.0
    np.testing.assert_allclose(fit.mean_offset, vertices[0] - rest, atol=1e-7)


def test_streamed_blocks_give_the_same_basis(monkeypatch: pytest.MonkeyPatch) -> None:
    vertices, rest = synthetic_clip([0.01, 0.004, 0.002])
    whole = fit_compact_basis(vertices, rest, max_components=3)
    # Column blocks of 7 coordinates and row blocks of 1 frame: many partial blocks.
    monkeypatch.setattr(compact_basis, "_BLOCK_BYTES", 8 * FRAMES * 7)
    blocked = fit_compact_basis(vertices, rest, max_components=3)
    np.testing.assert_allclose(blocked.reconstruct(), whole.reconstruct(), atol=2e-6)
    np.testing.assert_allclose(blocked.frame_max_error, whole.frame_max_error, atol=1e-6)


def test_bad_input_refused() -> None:
    vertices, rest = synthetic_clip([0.01])
    with pytest.raises(ValueError, match="rest must be"):
        fit_compact_basis(vertices, rest[:-1], max_components=2)
    with pytest.raises(ValueError, match="tolerance_m"):
        fit_compact_basis(vertices, rest, max_components=2, tolerance_m=0.0)
