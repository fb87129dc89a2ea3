"""Making a landmark detector by name (--detector)."""

from __future__ import annotations

from ..formats.errors import BadInput
from .detection import LandmarkDetector

DETECTORS = ("mediapipe", "fan")


def create_detector(name: str, video: bool, device: str = "cpu") -> LandmarkDetector:
    if name == "mediapipe":
        from .mediapipe_detector import MediaPipeDetector

        return MediaPipeDetector(video=video)
    if name == "fan":
        from .fan_detector import FanDetector

        return FanDetector(device=device, video=video)
    raise BadInput(f"--detector {name!r}: choose one of {', '.join(DETECTORS)}")
