"""Where the head's material cuts the neck: above its ragged open edge, only below the chin."""

from __future__ import annotations

import numpy as np

from faceadapt.backend.formats.head_file import load_head
from faceadapt.blender_addon.head_builder import MODEL_HEAD
from faceadapt.blender_addon.neck_cut import CUT_MARGIN_M, neck_cut_height


def tube(heights: np.ndarray, ragged: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An open tube of rings at `heights` (m), its lowest ring's points raised by `ragged`."""
    sides = len(ragged)
    angle = np.linspace(0, 2 * np.pi, sides, endpoint=False)
    rings = [np.stack([np.cos(angle), np.sin(angle), np.full(sides, z)], -1) for z in heights]
    rings[0][:, 2] += ragged
    vertices = np.concatenate(rings)
    faces = []
    for r in range(len(heights) - 1):
        for i in range(sides):
            a, b = r * sides + i, r * sides + (i + 1) % sides
            faces += [[a, b, b + sides], [a, b + sides, a + sides]]
    return vertices, np.array(faces)


def test_the_cut_clears_the_ragged_bottom_edge():
    ragged = np.array([0.0, 0.011, 0.002, 0.007, 0.0, 0.004])
    vertices, faces = tube(np.array([0.0, 0.02, 0.05, 0.08]), ragged)
    assert neck_cut_height(vertices, faces, chin_height=0.03) == ragged.max() + CUT_MARGIN_M


def test_open_edges_above_the_chin_do_not_count_and_a_closed_neck_has_no_cut():
    vertices, faces = tube(np.array([0.04, 0.06]), np.zeros(6))  # its open edges are all high
    assert neck_cut_height(vertices, faces, chin_height=0.03) is None


def test_the_default_heads_cut_is_below_its_chin():
    head = load_head(MODEL_HEAD)
    chin = float(head.vertices[head.landmark_vertex[8], 2])
    cut = neck_cut_height(head.vertices, head.faces, chin)
    assert cut is not None and 0.0 < cut < chin
