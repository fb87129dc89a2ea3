"""The landmark-detector interface: an RGB image in, iBUG-68 points with confidences out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..formats.protocol import NUM_LANDMARKS


@dataclass
class LandmarkDetection:
    """One image's landmarks. points (68, 2) pixels (0-based, centres at integers);
    confidence (68,) in [0, 1]; found False when no face was detected (points then zero)."""

    points: np.ndarray
    confidence: np.ndarray
    found: bool

    @staticmethod
    def missing() -> LandmarkDetection:
        return LandmarkDetection(np.zeros((NUM_LANDMARKS, 2), np.float32),
                                 np.zeros(NUM_LANDMARKS, np.float32), False)


class LandmarkDetector(Protocol):
    """Detects the most prominent face. `video` detectors may use the previous frame."""

    name: str

    def detect(self, image_rgb: np.ndarray) -> LandmarkDetection:
        """image_rgb: (H, W, 3) uint8."""
        ...

    def close(self) -> None: ...
