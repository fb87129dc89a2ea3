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
    """All 478 MediaPipe face-mesh points of the most prominent face (or of up to `max_faces`
    faces), in pixels."""

    def __init__(self, video: bool, max_faces: int = 1) -> None:
        import mediapipe as mp  # heavy import, only when a detector is made

        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=not video, max_num_faces=max_faces, refine_landmarks=True,
            min_detection_confidence=0.5, min_tracking_confidence=0.5)

    def points(self, image_rgb: np.ndarray) -> np.ndarray | None:
        """(478, 2) pixel coordinates (centres at integers), or None without a face."""
        faces = self.faces(image_rgb)
        return faces[0] if faces else None

    def faces(self, image_rgb: np.ndarray) -> list[np.ndarray]:
        """(478, 2) pixel coordinates of each face found, the most prominent first."""
        height, width = image_rgb.shape[:2]
        result = self._mesh.process(np.ascontiguousarray(image_rgb))
        # MediaPipe's normalised coordinates measure from the image edge, not a pixel centre.
        faces = [(np.array([[p.x, p.y] for p in face.landmark], np.float64) * [width, height] - 0.5
                  ).astype(np.float32) for face in (result.multi_face_landmarks or [])]
        return sorted(faces, key=lambda xy: -float(np.prod(xy.max(0) - xy.min(0))))

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
