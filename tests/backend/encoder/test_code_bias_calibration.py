"""The code's calibration removes a constant offset of the encoder's codes, through the layer
that outputs them, whichever way the landmarks give the code."""

import copy

import numpy as np
import pytest
import torch

from backend.encoder.augmentation import Augmentation
from backend.encoder.code_bias_calibration import calibrate_code_bias, mean_code_residual
from backend.encoder.network import EncoderArchitecture, ImageEncoder
from backend.encoder.training import Targets

SIZE = 64


class _Views:
    """Views whose true codes are what a copy of `encoder` (as it is now) predicts for them plus
    `offset` (normalised units): random crops and landmarks; records the indices asked for."""

    per_expression = 2

    def __init__(self, encoder: ImageEncoder, offset: torch.Tensor) -> None:
        self.encoder, self.offset = copy.deepcopy(encoder).eval(), offset
        self.asked: list[int] = []

    def make(self, indices, rng, augmentation, images=True):
        self.asked += [int(i) for i in indices]
        generator = torch.Generator().manual_seed(int(np.sum(indices)))
        crops = torch.rand(len(indices), 3, SIZE, SIZE, generator=generator)
        landmarks = 16 + torch.rand(len(indices), 68, 2, generator=generator) * 32
        confidence = torch.ones(len(indices), 68)
        with torch.no_grad():
            predicted = self.encoder(crops, landmarks, confidence).z
        codes = predicted + self.offset * self.encoder.code_scale
        empty = torch.zeros(len(indices))
        return Targets(crops, landmarks, confidence, codes, empty, empty, empty, empty)


@pytest.mark.parametrize("landmark_code", ["linear", "mlp"])
def test_a_constant_offset_of_the_codes_is_removed(landmark_code):
    torch.manual_seed(0)
    encoder = ImageEncoder(EncoderArchitecture(crop_size=SIZE, width=8, landmark_width=16,
                                               landmark_code=landmark_code))
    with torch.no_grad():
        encoder.code_scale.uniform_(0.5, 2.0)  # the shift is in units of each value's spread
        encoder.code_mean.normal_()
    encoder.train()
    offset = torch.linspace(-0.3, 0.3, encoder.config.latent)
    views = _Views(encoder, offset)
    expressions = np.arange(150)  # more than one chunk of views
    before = mean_code_residual(encoder, views, expressions, np.random.default_rng(1), Augmentation())
    assert torch.allclose(before, offset, atol=1e-5)
    # One view of each expression, of its own views.
    assert [i // views.per_expression for i in views.asked] == list(expressions)
    buffers = {name: value.clone() for name, value in encoder.named_buffers()}
    record = calibrate_code_bias(encoder, views, expressions, np.random.default_rng(1), Augmentation())
    assert record["views"] == 150 and record["shift_norm"] == pytest.approx(float(offset.norm()), abs=1e-3)
    assert encoder.training  # left as it was
    for name, value in encoder.named_buffers():  # the normalisation is not where the shift goes
        assert torch.equal(value, buffers[name]), name
    after = mean_code_residual(encoder, views, expressions, np.random.default_rng(2), Augmentation())
    assert after.abs().max() < 1e-5
