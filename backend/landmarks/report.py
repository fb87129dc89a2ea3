"""`landmarks-report`: how good the landmarks are, in numbers.

- NME (inter-ocular) of each available detector on the human-annotated photos of
  FACEADAPT_DATA/landmarks; an unavailable detector is listed with the reason; MediaPipe also
  by its direct pass alone (without the mirror pass of mediapipe_mirror.py).
- The landmark-embedding procedure run on the ICT FaceKit head, against ICT's own 68 ids.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..data_location import data_file
from ..events import EventSink
from ..formats.errors import BadInput
from .annotations import read_pts
from .detection import LandmarkDetector
from .detector_factory import DETECTORS, create_detector
from .mediapipe_mapping import annotated_photos
from .nme import nme

REGIONS = {"jaw": range(0, 17), "brows": range(17, 27), "nose": range(27, 36),
           "eyes": range(36, 48), "mouth": range(48, 68)}


def detector_nme(name: str, sink: EventSink, make: Callable[[], LandmarkDetector] | None = None) -> dict:
    """NME of detector `name` (create_detector's, or `make()`'s) on the annotated photos."""
    from PIL import Image

    try:
        detector = make() if make is not None else create_detector(name, video=False)
    except BadInput as exc:
        return {"available": False, "reason": exc.message}
    per_photo = {}
    try:
        for image_path, pts_path in annotated_photos(data_file("landmarks")):
            image = np.asarray(Image.open(image_path).convert("RGB"))
            detection = detector.detect(image)
            per_photo[image_path.name] = (float(nme(detection.points, read_pts(pts_path)))
                                          if detection.found else None)
    finally:
        detector.close()
    scored = [v for v in per_photo.values() if v is not None]
    sink.log(f"{name}: mean NME {np.mean(scored):.4f} over {len(scored)} photos")
    return {"available": True, "mean_nme": float(np.mean(scored)) if scored else None,
            "per_photo": per_photo, "faces_missed": len(per_photo) - len(scored)}


def ict_embedding_errors(sink: EventSink) -> dict:
    """Distances (mm) between the embedded landmark vertices and ICT's own, per region."""
    from ..heads.ict_head import ict_head_with_albedo, load_ict_head
    from ..heads.landmark_embedding import embed_landmarks

    head = ict_head_with_albedo()
    _, truth_ids = load_ict_head(data_file("heads/ict-facekit/ict_facekit.npz"))
    embedding = embed_landmarks(head)
    dist = np.linalg.norm(head.vertices[embedding.landmark_vertex] - head.vertices[truth_ids],
                          axis=1) * 1000
    report = {region: {"mean_mm": float(dist[list(r)].mean()), "max_mm": float(dist[list(r)].max())}
              for region, r in REGIONS.items()}
    report["unmasked_mean_mm"] = float(dist[embedding.landmark_mask].mean())
    report["eyes_nose_mouth_mean_mm"] = float(dist[27:].mean())
    sink.log("ICT embedding vs ICT ids (mm): " + ", ".join(
        f"{k} {v['mean_mm']:.1f}" for k, v in report.items() if isinstance(v, dict)))
    return report


def landmarks_report(sink: EventSink) -> dict:
    from .mediapipe_detector import MediaPipeDetector

    detectors = {name: detector_nme(name, sink) for name in DETECTORS}
    # What the mirror pass adds (mediapipe_mirror.py): MediaPipe on the photo alone.
    detectors["mediapipe-direct-pass"] = detector_nme(
        "mediapipe-direct-pass", sink, lambda: MediaPipeDetector(video=False, with_mirror_pass=False))
    return {"detectors": detectors, "ict_embedding": ict_embedding_errors(sink)}
