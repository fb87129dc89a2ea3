"""dlib's 68-point shape predictor (Kazemi & Sullivan 2014): the *independent* reference detector.

No tracker uses it (it is deliberately absent from `detector_factory`): the real-footage
evaluation scores the trackers' landmarks against it, and a reference the trackers were fitted to
would agree with them by construction. Its 68-point model was trained on iBUG 300-W, whose
annotations are licensed for research use only, so it is an evaluation-only dependency and is
never shipped in the extension.

The model file comes from the PyPI package `face_recognition_models`; its `__init__` needs
`pkg_resources` (absent here), so the file is located through the package's spec without
importing it. `FACEADAPT_DLIB_PREDICTOR` overrides the path.

dlib returns whole-pixel points (its `point` type is integer), in 0-based pixel coordinates.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from ..formats.errors import BadInput
from ..formats.protocol import NUM_LANDMARKS
from .detection import LandmarkDetection

PREDICTOR_ENV = "FACEADAPT_DLIB_PREDICTOR"
PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
INSTALL_HINT = "pip install dlib-bin==20.0.1.post1 face-recognition-models==0.3.0"


def find_predictor() -> Path:
    """The 68-point model file, or BadInput saying what is missing and how to install it."""
    override = os.environ.get(PREDICTOR_ENV)
    if override:
        path = Path(override)
        if not path.is_file():
            raise BadInput(f"{PREDICTOR_ENV}={override}: no such file; point it at "
                           f"{PREDICTOR_FILE} or unset it to use the face_recognition_models package")
        return path
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise BadInput(f"the dlib reference detector needs {PREDICTOR_FILE} from the package "
                       f"face_recognition_models, which is not installed: `{INSTALL_HINT}` "
                       f"(evaluation only), or set {PREDICTOR_ENV} to the file")
    path = Path(spec.submodule_search_locations[0]) / "models" / PREDICTOR_FILE
    if not path.is_file():
        raise BadInput(f"the package face_recognition_models lacks {path}; reinstall it: "
                       f"`{INSTALL_HINT}`, or set {PREDICTOR_ENV} to the file")
    return path


class DlibDetector:
    """iBUG-68 points of the largest frontal face; confidence 1 for every point of a found face.

    dlib has no per-point confidence: a face is found or not.
    """

    name = "dlib"

    def __init__(self, predictor: Path | None = None) -> None:
        try:
            import dlib
        except ImportError as exc:
            raise BadInput(f"the dlib reference detector needs the package dlib, which is not "
                           f"installed ({exc}): `{INSTALL_HINT}` (evaluation only)") from exc
        path = predictor or find_predictor()
        self._faces = dlib.get_frontal_face_detector()
        try:
            self._shape = dlib.shape_predictor(str(path))
        except RuntimeError as exc:
            raise BadInput(f"{path} cannot be loaded as a dlib shape predictor ({exc}); "
                           f"reinstall it: `{INSTALL_HINT}`") from exc

    def detect(self, image_rgb: np.ndarray) -> LandmarkDetection:
        """image_rgb: (H, W, 3) uint8. Points (68, 2) in 0-based pixels."""
        if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
            raise BadInput(f"the dlib detector needs an (H, W, 3) uint8 RGB image, got "
                           f"{image_rgb.shape} {image_rgb.dtype}")
        image = np.ascontiguousarray(image_rgb)
        # dlib's HOG window is 80 px; upsampling once finds faces down to ~40 px at 4x the cost,
        # so only when nothing was found at full size.
        boxes = self._faces(image, 0) or self._faces(image, 1)
        if not boxes:
            return LandmarkDetection.missing()
        box = max(boxes, key=lambda b: b.area())
        shape = self._shape(image, box)
        points = np.array([[p.x, p.y] for p in shape.parts()], np.float32)
        return LandmarkDetection(points, np.ones(NUM_LANDMARKS, np.float32), True)

    def close(self) -> None:
        """Nothing to release (dlib holds no threads or files); part of the detector protocol."""
