"""What a training run records of its losses (model.json's and encoder.json's run records):
per-step loss terms in, window means and a coarse curve out."""

from __future__ import annotations

import numpy as np

History = list[dict[str, float]]  # one {term: value} per step, in order


def mean_losses(history: History) -> dict[str, float]:
    """The mean of every loss term over `history` ({} for an empty one)."""
    return {k: float(np.mean([h[k] for h in history])) for k in history[0]} if history else {}


def loss_curve(history: History, points: int = 10) -> list[float]:
    """The mean total loss over each of `points` equal stretches of the run (fewer for a
    shorter run): enough to tell a converged training from one cut short (`personalize`)."""
    if not history:
        return []
    stretches = np.array_split(np.array([h["total"] for h in history]), min(points, len(history)))
    return [float(s.mean()) for s in stretches]


def still_falling(curve: list[float]) -> float:
    """How much the loss fell over the last fifth of the run, relative to the fifth before
    (0.0 when flat or rising, or when the curve is too short to tell)."""
    if len(curve) < 4:
        return 0.0
    fifth = max(len(curve) // 5, 1)
    before, last = float(np.mean(curve[-2 * fifth:-fifth])), float(np.mean(curve[-fifth:]))
    return max(0.0, (before - last) / before) if before > 0 else 0.0
