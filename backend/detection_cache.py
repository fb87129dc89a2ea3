"""The landmarks stage of `track`, cached: detecting is the slowest stage of a re-run that
changes only what comes after it (another tracker, model or texture size).

An entry is `<cache>/stages/detections/<key>.npz` (points, confidence, found), its key the
SHA-256 of everything the detections depend on: the footage file (resolved path, size,
modification time), the frame range and frame rate, the detector's name, the detection code
(every file of backend/landmarks/) and the versions of the packages it runs. Entries are disposable
(DESIGN.md): one that fails to load is detected again; a cache folder that cannot be written
is skipped; the stages folder is kept under its size limit (stage_cache.py). Never in --out;
nothing unpickled.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .cache import writable_cache_subdir
from .events import EventSink
from .footage import Footage
from .formats.atomic import atomic_file
from .formats.errors import BadInput
from .formats.npz_arrays import read_npz
from .landmarks.detector_factory import create_detector
from .stage_cache import code_digest, package_versions, prune_stages, stage_key
from .trackers.interface import ClipFrames, Detections

DETECTION_CODE = Path(__file__).parent / "landmarks"
DETECTION_PACKAGES = ("mediapipe", "face-alignment", "opencv-contrib-python", "opencv-python", "torch")


def detections_key(footage: Path, first: int, last: int, fps: float, detector: str) -> str:
    """The cache key of the detections of frames first..last of `footage` (a movie file or a
    folder of images) by `detector`; the root of the keys of the stages after it."""
    path = Path(footage).resolve()
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    return stage_key(footage=[[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in files],
                     frames=[first, last], fps=fps, detector=detector, code=code_digest(DETECTION_CODE),
                     packages=package_versions(DETECTION_PACKAGES))


def cached_detections(key: str, frame_count: int, detect: Callable[[], Detections],
                      sink: EventSink) -> Detections:
    """The detections of `frame_count` frames stored under `key`, else detect() (and store its
    result). An entry of other shapes or with non-finite values is detected again."""
    folder = writable_cache_subdir("stages/detections")
    path = folder / f"{key}.npz" if folder is not None else None
    if path is not None and path.is_file():
        try:
            arrays = read_npz(path, "cached detections", ("points", "confidence", "found"),
                              "it is detected again")
            points, confidence, found = arrays["points"], arrays["confidence"], arrays["found"]
            if (points.shape != (frame_count, 68, 2) or confidence.shape != (frame_count, 68)
                    or found.shape != (frame_count,) or not np.isfinite(points).all()
                    or not np.isfinite(confidence).all()):
                raise BadInput(f"cached detections {path.name}: shapes {points.shape}, "
                               f"{confidence.shape}, {found.shape} or values unfit for {frame_count} "
                               "frames; they are detected again")
            os.utime(path)  # the entry's age says when it was last used (prune_stages)
            sink.log(f"landmarks from the stage cache ({path.name[:12]})")
            return Detections(points.astype(np.float32), confidence.astype(np.float32), found.astype(bool))
        except BadInput as exc:
            sink.log(f"ignoring a stage cache entry: {exc}")
    detections = detect()
    if path is not None:
        with atomic_file(path) as tmp:
            with tmp.open("wb") as file:
                np.savez(file, points=detections.points, confidence=detections.confidence,
                         found=detections.found)
        prune_stages(path, sink)
    return detections


def detect_landmarks(frames: ClipFrames, detector_name: str, device: str, sink: EventSink) -> Detections:
    """Landmarks of every frame of the clip by the named detector."""
    detector = create_detector(detector_name, video=True, device=device)
    total = len(frames)
    points = np.zeros((total, 68, 2), np.float32)
    confidence = np.zeros((total, 68), np.float32)
    found = np.zeros(total, bool)
    try:
        for i, image in enumerate(frames):
            detection = detector.detect(image)
            points[i], confidence[i], found[i] = detection.points, detection.confidence, detection.found
            sink.progress("detect", i + 1, total)
    finally:
        detector.close()
    return Detections(points, confidence, found)


def clip_detections(frames: ClipFrames, key: str, detector_name: str, device: str,
                    sink: EventSink) -> Detections:
    """The landmarks of `frames` by the named detector, from the stage cache entry `key`
    (detections_key of the same footage, range and detector) or detected now and stored."""
    return cached_detections(key, len(frames), lambda: detect_landmarks(frames, detector_name, device, sink),
                             sink)


def footage_detections(footage: Path, detector_name: str, device: str, sink: EventSink) -> Detections:
    """The landmarks of every frame of `footage` by the named detector, through the stage
    cache under the key `track` gives the whole clip (so each run reuses the other's)."""
    source = Footage(footage)
    info = source.info
    key = detections_key(footage, 0, info.frame_count - 1, info.fps, detector_name)
    return clip_detections(ClipFrames(source, 0, info.frame_count - 1), key, detector_name, device, sink)
