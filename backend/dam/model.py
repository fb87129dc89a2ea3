"""The Deep Appearance Model (Lombardi et al. 2018) of one head.

Encoder: vertices (V, 3) + view-averaged texture (3, S, S) -> mean and log-variance of z.
Decoder: z -> vertices; (z, view direction in head space) -> view-dependent texture.
Vertices and textures are normalised with statistics of the training capture (stored as
buffers, so a saved model decodes without the capture).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..config_parser import option


@dataclass(frozen=True)
class DamArchitecture:
    """The network's shape (model.json "architecture"): what a saved model needs to be built
    again. How it was trained is dam.training.DamTraining."""

    latent: int = option(64, "size of the latent code z")
    texture_size: int = option(256, "decoded texture size S (S x S texels; 8 times a power of two); "
                               "must match the capture's")
    hidden: int = 256
    base_channels: int = 16  # channels at full texture resolution; doubled per halving (max 128)
    view_features: int = 8

    def as_dict(self) -> dict:
        return asdict(self)


def _levels(size: int) -> int:
    """Halvings from `size` down to 8 texels."""
    levels = 0
    while size > 8:
        if size % 2:
            raise ValueError(f"texture size {size} must be 8 times a power of two")
        size //= 2
        levels += 1
    return levels


def _channels(config: DamArchitecture, level: int) -> int:
    return min(config.base_channels * 2**level, 128)


class DeepAppearanceModel(nn.Module):
    def __init__(self, config: DamArchitecture, num_vertices: int) -> None:
        super().__init__()
        self.config = config
        self.num_vertices = num_vertices
        size, latent, hidden = config.texture_size, config.latent, config.hidden
        levels = _levels(size)
        self.levels = levels
        self.register_buffer("vertex_mean", torch.zeros(num_vertices * 3))
        self.register_buffer("vertex_scale", torch.ones(()))
        self.register_buffer("texture_mean", torch.zeros(3, size, size))
        self.register_buffer("texture_scale", torch.ones(()))

        self.encode_geometry = nn.Sequential(nn.Linear(num_vertices * 3, hidden), nn.LeakyReLU(0.2))
        convs: list[nn.Module] = []
        channels_in = 3
        for level in range(levels):
            channels_out = _channels(config, level + 1)
            convs += [nn.Conv2d(channels_in, channels_out, 4, 2, 1), nn.LeakyReLU(0.2)]
            channels_in = channels_out
        self.encode_texture = nn.Sequential(*convs, nn.Flatten(), nn.Linear(channels_in * 64, hidden),
                                            nn.LeakyReLU(0.2))
        self.to_latent = nn.Linear(2 * hidden, 2 * latent)

        self.decode_geometry = nn.Sequential(nn.Linear(latent, hidden), nn.LeakyReLU(0.2),
                                             nn.Linear(hidden, num_vertices * 3))
        self.encode_view = nn.Sequential(nn.Linear(3, config.view_features), nn.LeakyReLU(0.2))
        top = _channels(config, levels)
        self.texture_seed = nn.Sequential(
            nn.Linear(latent + config.view_features, top * 64), nn.LeakyReLU(0.2))
        ups: list[nn.Module] = []
        channels_in = top
        for level in reversed(range(levels)):
            channels_out = _channels(config, level)
            ups += [nn.ConvTranspose2d(channels_in, channels_out, 4, 2, 1), nn.LeakyReLU(0.2)]
            channels_in = channels_out
        self.decode_texture = nn.Sequential(*ups, nn.Conv2d(channels_in, 3, 3, 1, 1))
        self._top = top

    def encode(self, vertices: torch.Tensor,
               average_texture: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """vertices (B, V, 3) head space metres, average_texture (B, 3, S, S) in [0, 1]
        -> mean (B, Z), log-variance (B, Z)."""
        geometry = (vertices.reshape(len(vertices), -1) - self.vertex_mean) / self.vertex_scale
        texture = (average_texture - self.texture_mean) / self.texture_scale
        features = torch.cat([self.encode_geometry(geometry), self.encode_texture(texture)], dim=1)
        mean, log_variance = self.to_latent(features).chunk(2, dim=1)
        # Bounded: an exploding variance makes sampled codes (and the decoders) diverge.
        return mean, log_variance.clamp(-8.0, 2.0)

    def decode_vertices(self, z: torch.Tensor) -> torch.Tensor:
        """(B, Z) -> (B, V, 3) head space, metres."""
        flat = self.decode_geometry(z) * self.vertex_scale + self.vertex_mean
        return flat.view(len(z), self.num_vertices, 3)

    def decode_texture_for_view(self, z: torch.Tensor, view_dir: torch.Tensor) -> torch.Tensor:
        """(B, Z), unit view directions (B, 3) in head space -> (B, 3, S, S) texture in [0, 1]
        (unclamped: the loss sees raw values)."""
        seed = self.texture_seed(torch.cat([z, self.encode_view(view_dir)], dim=1))
        residual = self.decode_texture(seed.view(len(z), self._top, 8, 8))
        return residual * self.texture_scale + self.texture_mean

    def forward(self, vertices: torch.Tensor, average_texture: torch.Tensor, view_dir: torch.Tensor,
                sample: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(decoded vertices, decoded texture, mean, log-variance)."""
        mean, log_variance = self.encode(vertices, average_texture)
        z = mean + torch.randn_like(mean) * (0.5 * log_variance).exp() if sample else mean
        return self.decode_vertices(z), self.decode_texture_for_view(z, view_dir), mean, log_variance
