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
    # The bump is on the nose: its region carries it, the regions far from it less.
    regions = changed["regions_mm"]
    assert set(regions) == {"jaw", "brows", "nose", "eyes", "mouth"}
    assert regions["nose"] == max(regions.values()) and regions["nose"] > 2 * regions["jaw"]


def test_the_same_shape_scores_zero_when_its_landmarks_sit_on_other_vertices(default_head):
    """The landmarks only start the alignment; ICP must carry it to the end (ten fixed rounds
    left the ICT head 0.42 mm from itself)."""
    from scipy.spatial import cKDTree

    head = default_head
    shifted = head.vertices[head.landmark_vertex] + [0.004, 0.0, 0.003]  # 5 mm aside
    _, elsewhere = cKDTree(head.vertices).query(shifted)
    moved = replace(head, landmark_vertex=elsewhere.astype(head.landmark_vertex.dtype))
    assert identity_error_mm(moved, head)["mean_mm"] < 0.05
