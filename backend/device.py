"""Choosing the torch device from --device auto|cpu|cuda."""

from __future__ import annotations

from .formats.errors import BadInput

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(choice: str) -> str:
    import torch

    if choice not in DEVICE_CHOICES:
        raise BadInput(f"--device {choice!r}: choose one of {', '.join(DEVICE_CHOICES)}")
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise BadInput("--device cuda: no CUDA device is visible to torch "
                       f"(torch {torch.__version__}); use --device cpu or auto")
    return choice
