"""The last step of encoder training: the code's constant offset, set so that the encoder's
codes are right on average over the training expressions as tracking shows them.

Why: the trained encoder's codes carry a systematic offset (the shipped encoder's training
recorded a shift of 0.567 in norm over its 64 values, about 0.07 code spreads each), which training does
not remove and held-out views pay for; removing it improved held-out lab views and the encoder
tracker on every default-head ground-truth clip (docs/encoder.md, "The code's constant
offset", with the measurements).

The mean is taken over one view of every training expression, with the image phase's
augmentation and its own seeded draws (so a resumed training calibrates as an uninterrupted
one does), never over held-out views."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from .augmentation import Augmentation
from .network import ImageEncoder

if TYPE_CHECKING:
    from .training import ViewBatches

CHUNK = 64  # views encoded at once


@torch.no_grad()
def mean_code_residual(encoder: ImageEncoder, batches: ViewBatches, expressions: np.ndarray,
                       rng: np.random.Generator, augmentation: Augmentation) -> torch.Tensor:
    """(Z,) the mean of (true code - predicted code) / code_scale over one view (drawn with
    `rng`) of each of `expressions`, augmented and with detected landmarks."""
    per = batches.per_expression
    indices = expressions * per + rng.integers(0, per, len(expressions))
    total = None
    for begin in range(0, len(indices), CHUNK):
        target = batches.make(indices[begin:begin + CHUNK], rng, augmentation)
        predicted = encoder(target.crops, target.landmarks, target.confidence).z
        residual = ((target.codes - predicted) / encoder.code_scale).double().sum(0)
        total = residual if total is None else total + residual
    return (total / len(indices)).float()


@torch.no_grad()
def calibrate_code_bias(encoder: ImageEncoder, batches: ViewBatches, expressions: np.ndarray,
                        rng: np.random.Generator, augmentation: Augmentation) -> dict[str, float | int]:
    """Shift the encoder's code by its mean residual over `expressions` (mean_code_residual),
    in place, through the bias of the layer that outputs the normalised code (the linear
    landmark code's map, or the shared head's code outputs); returns what was shifted."""
    was_training = encoder.training
    encoder.eval()
    shift = mean_code_residual(encoder, batches, expressions, rng, augmentation)
    if encoder.linear_code:
        encoder.code_from_landmarks.bias += shift
    else:
        encoder.head[-1].bias[:encoder.head_codes] += shift
    encoder.train(was_training)
    return {"views": len(expressions), "shift_norm": round(float(shift.norm()), 4),
            "largest_shift": round(float(shift.abs().max()), 4)}
