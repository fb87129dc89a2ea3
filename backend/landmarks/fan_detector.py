"""face-alignment's 2D-FAN (Bulat & Tzimiropoulos 2017), iBUG-68 natively.

Its weights are not in the wheel: face-alignment downloads them on first use, which cannot
happen offline. FaceAdapt looks for them where face-alignment's own loader does (the torch
hub cache, `$TORCH_HOME/hub/checkpoints/2DFAN4-11f355bf06.pth.tar`) or at the path in
`FACEADAPT_FAN_WEIGHTS`, and otherwise says what is missing and where to put it. Faces are
located with MediaPipe (offline), so face-alignment's own face-detector weights are not needed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..formats.errors import BadInput
from .detection import LandmarkDetection
from .mediapipe_detector import MediaPipeMesh

FAN_URL = "https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar"
FAN_FILE = "2DFAN4-11f355bf06.pth.tar"
WEIGHTS_ENV = "FACEADAPT_FAN_WEIGHTS"
# FAN expects detector boxes around brows-to-chin; MediaPipe's mesh box is a little larger.
BOX_SHRINK = 0.05


def fan_weights_candidates() -> list[Path]:
    """Where the 2D-FAN weights are looked for, in order."""
    import torch

    candidates = []
    if os.environ.get(WEIGHTS_ENV):
        candidates.append(Path(os.environ[WEIGHTS_ENV]))
    candidates.append(Path(torch.hub.get_dir()) / "checkpoints" / FAN_FILE)
    return candidates


def find_fan_weights() -> Path:
    """The weights file, or BadInput naming the files and places it looked for."""
    candidates = fan_weights_candidates()
    for path in candidates:
        if path.is_file():
            return path
    places = "\n  ".join(str(p) for p in candidates)
    raise BadInput(
        f"the 2D-FAN detector needs its weights file {FAN_FILE}, not found at:\n  {places}\n"
        f"Download it from {FAN_URL} on a machine with internet and put it in the torch hub "
        f"checkpoints folder above, or set {WEIGHTS_ENV} to its path; or use --detector mediapipe.")


class FanDetector:
    """iBUG-68 landmarks from 2D-FAN, with its per-point heatmap scores as confidence."""

    name = "fan"

    def __init__(self, device: str = "cpu", video: bool = True) -> None:
        import torch
        from face_alignment import FaceAlignment, LandmarksType
        from face_alignment.models import FAN

        weights = find_fan_weights()

        class _FromFile(FaceAlignment):  # face-alignment's loader, with our weights path
            def _load_native(self, network_name, network_size, device, dtype):
                net = FAN(network_size)
                net.load_state_dict(torch.load(weights, map_location=device, weights_only=True))
                return net.to(device, dtype=dtype).eval()

        self._fa = _FromFile(LandmarksType.TWO_D, device=device, face_detector="folder",
                             flip_input=False, compile=False)
        self._boxes = MediaPipeMesh(video=video)

    def detect(self, image_rgb: np.ndarray) -> LandmarkDetection:
        mesh = self._boxes.points(image_rgb)
        if mesh is None:
            return LandmarkDetection.missing()
        (x0, y0), (x1, y1) = mesh.min(0), mesh.max(0)
        dx, dy = (x1 - x0) * BOX_SHRINK, (y1 - y0) * BOX_SHRINK
        box = np.array([x0 + dx, y0 + dy, x1 - dx, y1, 1.0], np.float32)
        points, scores, _ = self._fa.get_landmarks_from_image(
            image_rgb, detected_faces=[box], return_landmark_score=True)
        if not points:
            return LandmarkDetection.missing()
        return LandmarkDetection(np.asarray(points[0][:, :2], np.float32),
                                 np.clip(np.asarray(scores[0], np.float32), 0, 1), True)

    def close(self) -> None:
        self._boxes.close()
