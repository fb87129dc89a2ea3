"""MediaPipe face mesh (478 points, models inside the wheel: works offline) mapped to iBUG-68.

The detector runs the mesh on the image and on its mirror image and averages the two in the
mesh's own topology (mediapipe_mirror.py) before the mapping.

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
from .mediapipe_mirror import load_mirror_table, mirror_average

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
    """iBUG-68 landmarks from MediaPipe's face mesh, mirror-averaged (`with_mirror_pass` False:
    the direct pass alone, as the landmark embedding of heads uses it)."""

    name = "mediapipe"

    def __init__(self, video: bool = True, mapping_path: Path = MAPPING_PATH,
                 with_mirror_pass: bool = True) -> None:
        self._index, self._confidence = load_mapping(mapping_path)
        self._mirror_table = load_mirror_table() if with_mirror_pass else None
        self._mesh = MediaPipeMesh(video=video)
        try:
            # A mesh of its own for the mirror images: in video mode each stream tracks its face.
            self._mirror_mesh = MediaPipeMesh(video=video) if with_mirror_pass else None
        except BaseException:
            self._mesh.close()
            raise

    def mesh_points(self, image_rgb: np.ndarray) -> np.ndarray | None:
        """(478, 2) pixel points of the most prominent face, mirror-averaged, or None without a
        face. The direct pass decides whether there is a face; the mirror pass only refines its
        points. Both meshes see every frame, so that in video mode both keep tracking."""
        points = self._mesh.points(image_rgb)
        if self._mirror_mesh is None:
            return points
        mirror_pass = self._mirror_mesh.points(np.ascontiguousarray(image_rgb[:, ::-1]))
        if points is None:
            return None
        return mirror_average(points, mirror_pass, image_rgb.shape[1], self._mirror_table)

    def detect(self, image_rgb: np.ndarray) -> LandmarkDetection:
        """image_rgb: (H, W, 3) uint8."""
        points = self.mesh_points(image_rgb)
        if points is None:
            return LandmarkDetection.missing()
        return LandmarkDetection(points[self._index], self._confidence.copy(), True)

    def close(self) -> None:
        self._mesh.close()
        if self._mirror_mesh is not None:
            self._mirror_mesh.close()
