"""The image encoder's network: a face crop (B, 3, S, S) and the landmarks that placed it
-> DAM code z and crop-relative pose.

Two branches meet in one head. The image: a plain convolutional backbone (no pretrained
weights: everything is trained here), per stage a stride-2 3x3 convolution then (below full
resolution) a residual 3x3 convolution, GroupNorm (batch statistics would change with the batch
size, and adaptation runs tiny batches) and SiLU, global average pooling. The landmarks: the
detected crop points (crop.CROP_POINTS) in crop coordinates with a presence flag, through a
two-layer perceptron. With `landmark_code` "linear" (the default) the code's landmark part is a
linear map of those inputs (the perceptron then serves the pose alone) and the image features
add their part of the code through a linear layer of their own; with "mlp" (the default until
2026-12-04; an encoder.json without the field is one) the perceptron gives the code too: fitted
to MediaPipe's points on lab renders, it learns that detector's quirks on those renders and
carries them badly to other light (docs/encoder.md, "A linear landmark code"). Why both
branches (docs/encoder.md, "Why the landmarks go in"): trained from scratch on this CPU's
budget, the image branch learns the pose but hardly the expression, while the landmark geometry
gives most of the expression within minutes; the image branch adds what landmarks cannot show
(cheeks, mouth interior, shading) and what adaptation can refine.
Codes are predicted normalised by the training codes' mean and spread (stored as buffers, so
a saved encoder needs nothing else).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..config_parser import option
from .crop import CONFIDENT, CROP_POINTS
from .crop_pose import rotation_from_6d

POSE_OUTPUTS = 6 + 2 + 1  # rotation (6D), crop position (u, v), log scale


@dataclass(frozen=True)
class EncoderArchitecture:
    """The network's shape (encoder.json "architecture")."""

    crop_size: int = option(128, "crop side in pixels (a multiple of 32)")
    width: int = option(24, "channels of the first stage (doubled per stage, at most 8x)")
    stages: int = 5
    latent: int = 64  # the DAM's code size; train-encoder takes it from the model
    landmark_width: int = option(256, "units of the landmark branch's two layers")
    landmark_code: str = option("linear", "how the landmarks give the code: a linear map of them, "
                                "fitted in closed form first (linear), or through the landmark branch's "
                                "perceptron and the shared head (mlp: the default before 2026-12-04)",
                                choices=("mlp", "linear"))

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class EncoderOutput:
    """z (B, Z) DAM codes; rotation (B, 3, 3) R_crop; uv (B, 2); scale (B,) (crop_pose.py)."""

    z: torch.Tensor
    rotation: torch.Tensor
    uv: torch.Tensor
    scale: torch.Tensor
    rotation_6d: torch.Tensor


def _stage(channels_in: int, channels_out: int, residual: bool) -> nn.Module:
    layers = [nn.Conv2d(channels_in, channels_out, 3, 2, 1), nn.GroupNorm(8, channels_out), nn.SiLU()]
    return nn.Sequential(*layers, *([_Residual(channels_out)] if residual else []))


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1), nn.GroupNorm(8, channels))
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


class ImageEncoder(nn.Module):
    def __init__(self, config: EncoderArchitecture) -> None:
        super().__init__()
        if config.crop_size % 32:
            raise ValueError(f"crop size {config.crop_size} must be a multiple of 32")
        if config.landmark_code not in ("mlp", "linear"):
            raise ValueError(f"landmark_code {config.landmark_code!r}: mlp or linear")
        self.config = config
        stages, channels = [], 3
        for level in range(config.stages):
            out = config.width * min(2**level, 8)
            # No residual at full resolution: it would cost a third of the network's time.
            stages.append(_stage(channels, out, residual=level > 0))
            channels = out
        self.backbone = nn.Sequential(*stages, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        width, geometry = config.landmark_width, 3 * len(CROP_POINTS)
        self.landmark_branch = nn.Sequential(nn.Linear(geometry, width), nn.SiLU(),
                                             nn.Linear(width, width), nn.SiLU())
        self.linear_code = config.landmark_code == "linear"
        # The head's outputs: the normalised code (unless linear) then the pose.
        self.head_codes = 0 if self.linear_code else config.latent
        self.head = nn.Sequential(nn.Linear(channels + width, 256), nn.SiLU(),
                                  nn.Linear(256, self.head_codes + POSE_OUTPUTS))
        if self.linear_code:
            self.code_from_landmarks = nn.Linear(geometry, config.latent)
            self.code_from_image = nn.Linear(channels, config.latent)
            # The map reads standardised inputs (so a gradient step means the same for every
            # point); linear_landmark_code.py sets both with a closed-form fit.
            self.register_buffer("landmark_mean", torch.zeros(geometry))
            self.register_buffer("landmark_scale", torch.ones(geometry))
        self.register_buffer("code_mean", torch.zeros(config.latent))
        self.register_buffer("code_scale", torch.ones(config.latent))
        # A frontal face at the crop centre: the head's output starts there. The image branch
        # starts silent: training fits the landmark branch first (training.py), and image
        # features must not disturb that fit when they join.
        with torch.no_grad():
            self.head[0].weight[:, :channels].zero_()
            last = self.head[-1]
            last.weight.mul_(0.1)
            last.bias.zero_()
            last.bias[self.head_codes:self.head_codes + 6] = torch.tensor([1.0, 0, 0, 0, 1.0, 0])
            if self.linear_code:
                self.code_from_landmarks.weight.mul_(0.1)
                self.code_from_landmarks.bias.zero_()
                self.code_from_image.weight.zero_()
                self.code_from_image.bias.zero_()

    def forward(self, crops: torch.Tensor | None, landmarks: torch.Tensor,
                confidence: torch.Tensor) -> EncoderOutput:
        """crops (B, 3, S, S) RGB in [0, 1], or None for the landmark branch alone (image
        features zero: the first phase of training); landmarks (B, 68, 2) the iBUG-68 detections in
        crop pixels (0-based, centres at integers); confidence (B, 68) in [0, 1] (points at or
        below crop.CONFIDENT count as missing)."""
        geometry = self.landmark_inputs(landmarks, confidence)
        image = (self.backbone(crops - 0.5) if crops is not None else
                 geometry.new_zeros(len(geometry), self.head[0].in_features - self.config.landmark_width))
        features = torch.cat([image, self.landmark_branch(geometry)], 1)
        out = self.head(features)
        codes = self.head_codes
        normalised = (self.code_from_landmarks((geometry - self.landmark_mean) / self.landmark_scale)
                      + self.code_from_image(image) if self.linear_code else out[:, :codes])
        six, uv, scale = out[:, codes:codes + 6], out[:, codes + 6:codes + 8], out[:, codes + 8]
        return EncoderOutput(normalised * self.code_scale + self.code_mean, rotation_from_6d(six),
                             uv, scale, six)

    def landmark_inputs(self, landmarks: torch.Tensor, confidence: torch.Tensor) -> torch.Tensor:
        """The landmark branch's input (B, 3 x len(CROP_POINTS)): the crop points (B, 68, 2 crop
        pixels) in [-1, 1], a missing point zero, then each point's presence flag."""
        points = landmarks[:, CROP_POINTS]
        present = (confidence[:, CROP_POINTS] > CONFIDENT).to(points.dtype)
        half = self.config.crop_size / 2
        normalised = (points - (self.config.crop_size - 1) / 2) / half * present[..., None]
        return torch.cat([normalised.flatten(1), present], 1)
