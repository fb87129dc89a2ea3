"""How far a fitted head's rest shape is from an actor's true one, across topologies, by the
NoW benchmark's protocol (now_protocol.py): over the truth's face points near its nose tip, after
a similarity alignment, in total and per face region.

`evaluate-identity HEAD --truth CLIP` scores a head (e.g. from `fit-identity`) against a
ground-truth clip's head beside the default head's score and the basis reach's (the default
head reshaped by the identity basis as close to the truth as it allows: the floor of a fit).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..config_parser import option, positional, report_option, required
from ..formats.head_file import HeadAsset, load_head
from ..heads.default_head import default_head, resolve_head
from ..identity.basis_reach import basis_reach
from ..identity.identity_basis import identity_basis
from .now_protocol import now_alignment, now_crop, surface_distances_mm


@dataclass(frozen=True)
class EvaluateIdentityConfig:
    head: Path = positional("head.npz whose rest shape is scored (e.g. from fit-identity)")
    truth: Path = required("ground-truth clip folder (its head.npz is the actor) or a head.npz")
    reference: str = option("default", "head scored beside it: 'default' or a head.npz path")
    json: Path | None = report_option()


# iBUG-68 regions: a truth point belongs to the region of its nearest landmark.
REGIONS = {"jaw": range(0, 17), "brows": range(17, 27), "nose": range(27, 36),
           "eyes": range(36, 48), "mouth": range(48, 68)}


def identity_error_mm(head: HeadAsset, truth: HeadAsset) -> dict:
    """NoW-style error of `head`'s rest shape against `truth`'s (both (V, 3) head space):
    mean, median and p90 in millimetres over the truth's cropped face points, and the mean per
    region ("regions_mm": jaw, brows, nose, eyes, mouth; points grouped by their nearest of the
    truth's iBUG-68 landmarks)."""
    points = truth.vertices[now_crop(truth.vertices, truth)].astype(np.float64)
    d = surface_distances_mm(points, head.vertices, head.faces,
                             now_alignment(head.vertices, head, truth.vertices, truth, points))
    landmarks = truth.vertices[truth.landmark_vertex[truth.landmark_mask]]
    nearest = np.flatnonzero(truth.landmark_mask)[
        np.argmin(((points[:, None] - landmarks[None]) ** 2).sum(-1), axis=1)]
    regions = {name: round(float(d[np.isin(nearest, list(ids))].mean()), 3)
               for name, ids in REGIONS.items() if np.isin(nearest, list(ids)).any()}
    return {"mean_mm": round(float(d.mean()), 3), "median_mm": round(float(np.median(d)), 3),
            "p90_mm": round(float(np.percentile(d, 90)), 3), "points": len(d), "regions_mm": regions}


def basis_reach_error_mm(truth: HeadAsset) -> dict:
    """`identity_error_mm` of the default head reshaped by the identity basis as close to
    `truth` as the basis allows (identity/basis_reach.py): the floor of an identity fit."""
    head = default_head()
    return identity_error_mm(replace(head, vertices=basis_reach(head, identity_basis(), truth)), truth)


def evaluate_identity(config: EvaluateIdentityConfig) -> dict:
    """The report of `evaluate-identity`: the head's error, the reference head's and the basis
    reach's (the least the identity basis allows)."""
    truth_path = config.truth / "head.npz" if config.truth.is_dir() else config.truth
    truth = load_head(truth_path)
    return {"truth": str(truth_path),
            "head": {"path": str(config.head), **identity_error_mm(load_head(config.head), truth)},
            "reference": {"head": config.reference,
                          **identity_error_mm(resolve_head(config.reference), truth)},
            "basis_reach": basis_reach_error_mm(truth)}
