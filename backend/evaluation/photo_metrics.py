"""Metrics of tracked annotated photos: each photo is tracked as a one-frame clip, and its fitted
landmarks are scored against the human annotation (NME over the annotation's inter-ocular
distance, the 68 points)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..formats.results_dir import read_results
from ..landmarks.annotations import read_pts
from ..landmarks.nme import nme


def photo_nme(results_dir: Path, annotation: Path) -> float | None:
    """NME of the fitted landmarks of a one-frame results directory against the annotation
    (an iBUG .pts file); None when the frame is untracked (confidence 0)."""
    tracking = read_results(results_dir).tracking
    if tracking["confidence"][0] <= 0:
        return None
    return float(nme(tracking["landmarks_fit"][0], read_pts(annotation)))


def photos_summary(per_photo: dict[str, float | None]) -> dict[str, Any]:
    """The per-photo NME (None: no face tracked, counted but never averaged), their mean over
    the tracked photos (NaN with none) and the counts."""
    scored = [value for value in per_photo.values() if value is not None]
    return {"per_photo_nme": per_photo, "nme_mean": float(np.mean(scored)) if scored else float("nan"),
            "photos": len(per_photo), "photos_tracked": len(scored)}
