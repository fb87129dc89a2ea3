"""The basis's reach: the identity the basis allows closest to a true surface, fitted in 3D."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from backend.evaluation.identity_benchmark import random_identity
from backend.evaluation.identity_error import EvaluateIdentityConfig, evaluate_identity, identity_error_mm
from backend.formats.head_file import save_head
from backend.identity.basis_reach import basis_reach
from backend.identity.identity_basis import identity_basis


@pytest.fixture(scope="module")
def basis():
    return identity_basis()


def test_an_identity_the_basis_spans_is_reached(default_head, basis):
    truth = replace(default_head, vertices=(default_head.vertices
                                            + basis.deltas(random_identity(basis, 4))).astype(np.float32))
    default_mm = identity_error_mm(default_head, truth)["mean_mm"]
    reached_mm = identity_error_mm(replace(default_head, vertices=basis_reach(default_head, basis, truth)),
                                   truth)["mean_mm"]
    print(f"NoW error: default head {default_mm:.3f} mm, basis reach {reached_mm:.3f} mm")
    assert reached_mm < 0.15 * default_mm


def test_a_shape_outside_the_basis_is_not_reached(default_head, basis):
    # A dent the basis has no modifier for: the reach cannot make it (it is a floor of what the
    # basis allows, not a fit of any surface).
    dented = default_head.vertices.astype(np.float64).copy()
    nose = default_head.vertices[default_head.landmark_vertex[30]]
    near = np.linalg.norm(dented - nose, axis=1) < 0.012
    dented[near, 1] += 0.004  # pushed back into the head, 4 mm
    truth = replace(default_head, vertices=dented.astype(np.float32))
    reached_mm = identity_error_mm(replace(default_head, vertices=basis_reach(default_head, basis, truth)),
                                   truth)["mean_mm"]
    assert reached_mm > 0.5 * identity_error_mm(default_head, truth)["mean_mm"]


def test_evaluate_identity_reports_the_basis_reach_beside_the_heads(default_head, basis, tmp_path):
    truth = replace(default_head, vertices=(default_head.vertices
                                            + basis.deltas(random_identity(basis, 5))).astype(np.float32))
    save_head(truth, tmp_path / "truth.npz")
    save_head(default_head, tmp_path / "head.npz")
    report = evaluate_identity(EvaluateIdentityConfig(head=tmp_path / "head.npz", truth=tmp_path / "truth.npz"))
    assert report["head"]["mean_mm"] == report["reference"]["mean_mm"] > 0
    assert report["basis_reach"]["mean_mm"] < 0.15 * report["reference"]["mean_mm"]
