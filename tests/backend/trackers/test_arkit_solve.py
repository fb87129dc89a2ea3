"""ARKit weights solved from decoded vertices: known weights come back, out-of-range ones are
clipped to the sliders' [0, 1], untracked frames get zeros, and the residual is reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from backend.dam.model_folder import load_model_head
from backend.trackers.arkit_solve import solve_arkit_weights

DEFAULT_MODEL = Path(__file__).parents[3] / "backend/models/default"


def test_known_weights_come_back_and_untracked_frames_get_zeros():
    head = load_model_head(DEFAULT_MODEL)
    rng = np.random.default_rng(0)
    count = len(head.blendshapes)
    truth = np.zeros((4, count), np.float32)
    for row in truth[:3]:
        chosen = rng.choice(count, 5, replace=False)
        row[chosen] = rng.uniform(0.2, 0.9, 5)
    vertices = (head.vertices[None] + np.einsum("fk,kvc->fvc", truth, head.blendshapes)).astype(np.float32)
    tracked = np.array([True, True, True, False])
    solve = solve_arkit_weights(head, vertices, tracked)
    np.testing.assert_allclose(solve.weights[:3], truth[:3], atol=1e-3)
    assert (solve.weights[3] == 0).all()
    assert solve.vertex_mm < 1e-3 and solve.vertex_mm_p95 < 1e-3

    # Twice a shape's full offset is beyond its slider: clipped to 1, the rest reported as error.
    beyond = (head.vertices + 2 * head.blendshapes[0])[None].astype(np.float32)
    clipped = solve_arkit_weights(head, beyond, np.array([True]))
    assert clipped.weights[0, 0] == np.float32(1.0) and clipped.vertex_mm > 0
