"""MediaPipe face mesh (478 points, models inside the wheel: works offline) mapped to iBUG-68.

The 478 -> 68 table (`mediapipe_to_ibug68.json`) was derived by
`python -m backend derive-landmark-mapping` from human annotations; see docs/landmarks.md.
Per-point confidence is the table's prior (points MediaPipe places less consistently with
the annotation convention, such as the jaw contour, count less in a fit).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .detection import LandmarkDetection

MAPPING_PATH = Path(__file__).with_name("mediapipe_to_ibug68.json")


def load_mapping(path: Path = MAPPING_PATH) -> tuple[np.ndarray, np.ndarray]:
    """(68,) MediaPipe indices and (68,) confidence priors."""
    table = json.loads(Path(path).read_text())
    return np.array(table["index"], np.int64), np.array(table["confidence"], np.float32)


class MediaPipeMesh:
    """All 478 MediaPipe face-mesh points of the most prominent face, in pixels."""

    def __init__(self, video: bool) -> None:
        import mediapipe as mp  # heavy import, only when a detector is made

        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=not video, max_num_faces=1, refine_landmarks=True,
            min_detection_confidence=0.5, min_tracking_confidence=0.5)

    def points(self, image_rgb: np.ndarray) -> np.ndarray | None:
        """(478, 2) pixel coordinates (centres at integers), or None without a face."""
        height, width = image_rgb.shape[:2]
        result = self._mesh.process(np.ascontiguousarray(image_rgb))
        if not result.multi_face_landmarks:
            return None
        lm = result.multi_face_landmarks[0].landmark
        xy = np.array([[p.x, p.y] for p in lm], np.float64)
        # MediaPipe's normalised coordinates measure from the image edge, not a pixel centre.
        return (xy * [width, height] - 0.5).astype(np.float32)

    def close(self) -> None:
        self._mesh.close()


class MediaPipeDetector:
    """iBUG-68 landmarks from MediaPipe's face mesh."""

    name = "mediapipe"

    def __init__(self, video: bool = True, mapping_path: Path = MAPPING_PATH) -> None:
        self._mesh = MediaPipeMesh(video=video)
        self._index, self._confidence = load_mapping(mapping_path)

    def detect(self, image_rgb: np.ndarray) -> LandmarkDetection:
        points = self._mesh.points(image_rgb)
        if points is None:
            return LandmarkDetection.missing()
        return LandmarkDetection(points[self._index], self._confidence.copy(), True)

    def close(self) -> None:
        self._mesh.close()
