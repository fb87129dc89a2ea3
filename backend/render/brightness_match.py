"""Filling texels no view saw from a reference texture (the head's albedo), made as bright per
channel as the texels that were seen: the lab capture and albedo fusion both fill their gaps so,
and a gap filled at the reference's own brightness would show as a patch under another light."""

from __future__ import annotations

import torch


def brightness_matched(reference: torch.Tensor, texels: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
    """(C, N) `reference` (C, N) in [0, 1] scaled per channel so that its mean over the `seen`
    (N,) bool texels equals `texels`' (C, N) mean there, clipped to [0, 1]; `reference` itself
    when nothing was seen."""
    if not seen.any():
        return reference.clone()
    gain = texels[:, seen].mean(1) / reference[:, seen].mean(1).clamp(min=1e-6)
    return (reference * gain[:, None]).clamp(0, 1)
