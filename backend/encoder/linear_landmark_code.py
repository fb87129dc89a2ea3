"""The closed-form start of a linear landmark code (network.py, `landmark_code` "linear"): ridge
regression from the landmark inputs of the training views, with the detector's error the
landmark phase adds, to their normalised DAM codes.

Why closed form: the best map is large (a landmark moving by a hundredth of the crop moves a
code by a good part of its spread), and Adam at the encoder's learning rate moves a weight by
about the rate per step, so a map trained from zero is still far from it after thousands of
steps. The regularisation weight is the one that predicts held-out expressions best (every
tenth expression of the training views, kept out of the fit that chooses it; the final fit
uses all)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from .augmentation import Augmentation
from .network import ImageEncoder

if TYPE_CHECKING:
    from .training import ViewBatches

RIDGE_WEIGHTS = (0.1, 1.0, 10.0, 100.0, 1000.0)  # x the number of samples / 10,000
HELD_OUT_EVERY = 10  # expressions
CHUNK = 1024  # views per batch drawn


def landmark_samples(encoder: ImageEncoder, batches: ViewBatches, expressions: np.ndarray,
                     rng: np.random.Generator, augmentation: Augmentation
                     ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Every view of `expressions` once, landmarks as the landmark phase draws them: inputs
    (N, D) f64, normalised codes (N, Z) f64, each view's expression (N,)."""
    per = batches.per_expression
    indices = (expressions[:, None] * per + np.arange(per)).reshape(-1)
    inputs, codes = [], []
    with torch.no_grad():
        for begin in range(0, len(indices), CHUNK):
            target = batches.make(indices[begin:begin + CHUNK], rng, augmentation, images=False)
            inputs.append(encoder.landmark_inputs(target.landmarks, target.confidence).double().cpu())
            codes.append(((target.codes - encoder.code_mean) / encoder.code_scale).double().cpu())
    return torch.cat(inputs), torch.cat(codes), batches.views.expression[indices]


def _ridge(inputs: torch.Tensor, codes: torch.Tensor, weight: float) -> torch.Tensor:
    """(D, Z) map of standardised inputs (N, D) to centred codes (N, Z)."""
    gram = inputs.T @ inputs
    regulariser = weight * len(inputs) / 10_000 * torch.eye(len(gram), dtype=gram.dtype)
    return torch.linalg.solve(gram + regulariser, inputs.T @ codes)


def _standardisation(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and spread (D,) of inputs (N, D); a constant input (a flag always set) keeps
    spread 1."""
    scale = inputs.std(0)
    return inputs.mean(0), torch.where(scale > 1e-6, scale, torch.ones_like(scale))


def fit_linear_landmark_code(encoder: ImageEncoder, inputs: torch.Tensor, codes: torch.Tensor,
                             expression: np.ndarray) -> dict[str, float | None]:
    """Set the encoder's linear landmark map and its input standardisation from samples
    (landmark_samples); returns the chosen weight and its held-out code error (RMS over every
    held-out view's code values, units of the codes' spread; None when the samples hold too
    few expressions to hold some out). A missing point enters as its zero coordinates and its
    flag, as in network.py, and the map learns what the flag means."""
    held = torch.as_tensor(expression % HELD_OUT_EVERY == 0)
    errors = {}
    if held.any() and not held.all():  # else too few expressions to choose: the middle weight
        mean, scale = _standardisation(inputs[~held])
        standard, code_mean = (inputs - mean) / scale, codes[~held].mean(0)
        for weight in RIDGE_WEIGHTS:
            fitted = _ridge(standard[~held], codes[~held] - code_mean, weight)
            predicted = standard[held] @ fitted + code_mean
            errors[weight] = float(((predicted - codes[held]) ** 2).mean().sqrt())
    chosen = min(errors, key=errors.get) if errors else RIDGE_WEIGHTS[len(RIDGE_WEIGHTS) // 2]
    mean, scale = _standardisation(inputs)
    fitted = _ridge((inputs - mean) / scale, codes - codes.mean(0), chosen)
    with torch.no_grad():
        encoder.landmark_mean.copy_(mean.float())
        encoder.landmark_scale.copy_(scale.float())
        encoder.code_from_landmarks.weight.copy_(fitted.T.float())
        encoder.code_from_landmarks.bias.copy_(codes.mean(0).float())
    return {"ridge_weight": chosen, "held_out_code_error": round(errors[chosen], 4) if errors else None}
