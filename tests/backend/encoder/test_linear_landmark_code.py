"""The closed-form start of a linear landmark code recovers a linear relation of landmarks to
codes, and the encoder then predicts the codes from the landmarks alone."""

import numpy as np
import torch

from backend.encoder.linear_landmark_code import RIDGE_WEIGHTS, fit_linear_landmark_code
from backend.encoder.network import EncoderArchitecture, ImageEncoder


def _encoder():
    torch.manual_seed(0)
    return ImageEncoder(EncoderArchitecture(crop_size=64, width=8, landmark_width=16,
                                            landmark_code="linear")).eval()


def _samples(encoder, count, generator):
    landmarks = 16 + torch.rand(count, 68, 2, generator=generator) * 32
    confidence = torch.ones(count, 68)
    return landmarks, confidence, encoder.landmark_inputs(landmarks, confidence).double()


def test_a_linear_relation_is_recovered_and_predicted_from_the_landmarks_alone():
    encoder = _encoder()
    generator = torch.Generator().manual_seed(3)
    _, _, inputs = _samples(encoder, 600, generator)
    truth = torch.randn(inputs.shape[1], 64, generator=generator, dtype=torch.float64) * 3
    codes = (inputs - inputs.mean(0)) @ truth  # normalised codes, linear in the inputs
    expression = np.arange(600) // 2
    fit = fit_linear_landmark_code(encoder, inputs, codes, expression)
    assert fit["ridge_weight"] in RIDGE_WEIGHTS
    # Chosen on held-out expressions: the smallest weight, for an exact relation.
    assert fit["ridge_weight"] == min(RIDGE_WEIGHTS) and fit["held_out_code_error"] < 0.05 * codes.std()
    unseen, unseen_confidence, unseen_inputs = _samples(encoder, 50, generator)
    expected = ((unseen_inputs - inputs.mean(0)) @ truth).float() * encoder.code_scale + encoder.code_mean
    with torch.no_grad():
        predicted = encoder(None, unseen, unseen_confidence).z
    assert (predicted - expected).abs().max() < 0.05 * expected.abs().max()


def test_a_noisy_relation_chooses_more_regularisation_and_too_few_expressions_use_the_middle_weight():
    encoder = _encoder()
    generator = torch.Generator().manual_seed(4)
    _, _, inputs = _samples(encoder, 400, generator)
    noise_only = torch.randn(400, 64, generator=generator, dtype=torch.float64)  # nothing to learn
    assert fit_linear_landmark_code(encoder, inputs, noise_only, np.arange(400) // 2)["ridge_weight"] > 1
    few = fit_linear_landmark_code(encoder, inputs[:10], noise_only[:10], np.zeros(10, int))
    assert few == {"ridge_weight": RIDGE_WEIGHTS[len(RIDGE_WEIGHTS) // 2], "held_out_code_error": None}
