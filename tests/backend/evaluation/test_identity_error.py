"""The NoW-style identity error: blind to where and how large a head is, not to its shape."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from backend.evaluation.identity_error import identity_error_mm


def test_a_moved_and_scaled_copy_scores_zero_and_a_changed_shape_does_not(default_head):
    head = default_head
    a = math.radians(20)
    turn = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    moved = replace(head, vertices=(1.1 * head.vertices @ turn.T + [0.05, -0.02, 0.3]).astype(np.float32))
    same = identity_error_mm(moved, head)
    assert same["mean_mm"] < 0.05 and same["points"] > 1000
    nose = head.vertices[head.landmark_vertex[30]]
    bump = np.exp(-(np.linalg.norm(head.vertices - nose, axis=1) / 0.025) ** 2)[:, None] * [0, -0.008, 0]
    changed = identity_error_mm(replace(head, vertices=(head.vertices + bump).astype(np.float32)), head)
    print(changed)
    assert changed["mean_mm"] > 0.2 and changed["p90_mm"] > 0.5
