"""`track`: footage -> landmarks -> landmark-fitting tracker -> results directory."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .events import EventSink
from .footage import Footage, parse_frame_range
from .formats.atomic import atomic_directory
from .formats.errors import BadInput, NoFace
from .formats.head_file import HeadAsset
from .formats.results_dir import TrackingArrays, refuse_existing, write_arrays, write_summary
from .heads.default_head import head_id, resolve_head
from .landmarks.detector_factory import create_detector
from .landmarks.nme import inter_ocular
from .projected_textures import write_projected_textures
from .tracking.landmark_fitter import FitConfig, FitResult, fit_landmarks

TRACKER_NAME = "landmark-fit"
BASELINE_NAME = "mediapipe-blendshapes"  # benchmark baseline, needs FACEADAPT_DATA
TRACKERS = (TRACKER_NAME, BASELINE_NAME)


@dataclass
class TrackSettings:
    footage: Path
    out: Path
    frames: str | None = None
    head: str = "default"
    detector: str = "mediapipe"
    device: str = "cpu"
    overwrite: bool = False
    fps: float | None = None  # for image sequences
    texture_size: int = 512  # projected footage textures (0: none)
    tracker: str = TRACKER_NAME
    fit: FitConfig = field(default_factory=FitConfig)


@dataclass
class Detections:
    points: np.ndarray  # (F, 68, 2)
    confidence: np.ndarray  # (F, 68)
    found: np.ndarray  # (F,) bool


def detect_landmarks(footage: Footage, first: int, last: int, detector_name: str, device: str,
                     sink: EventSink, timings: dict[str, float]) -> Detections:
    """Decode frames and detect landmarks, timing both stages separately."""
    detector = create_detector(detector_name, video=True, device=device)
    total = last - first + 1
    points = np.zeros((total, 68, 2), np.float32)
    confidence = np.zeros((total, 68), np.float32)
    found = np.zeros(total, bool)
    decode_s = detect_s = 0.0
    try:
        start = time.perf_counter()
        for i, (_, image) in enumerate(footage.frames(first, last)):
            decoded = time.perf_counter()
            decode_s += decoded - start
            detection = detector.detect(image)
            points[i], confidence[i], found[i] = detection.points, detection.confidence, detection.found
            start = time.perf_counter()
            detect_s += start - decoded
            sink.progress("detect", i + 1, total)
    finally:
        detector.close()
    timings["decode"], timings["detect"] = decode_s, detect_s
    return Detections(points, confidence, found)


def face_landmarker_baseline(footage: Footage, first: int, last: int, head: HeadAsset,
                             sink: EventSink, timings: dict[str, float]) -> tuple[Detections, FitResult]:
    """The MediaPipe Face Landmarker baseline as detections and a fit (its blendshape scores
    and transformation matrix; backend/tracking/mediapipe_blendshapes.py)."""
    from .data_location import data_file
    from .render.rasterize import project
    from .tracking.mediapipe_blendshapes import FaceLandmarkerTracker

    tracker = FaceLandmarkerTracker(data_file("models/face_landmarker.task"),
                                    data_file("heads/mediapipe-canonical/face_model_with_iris.obj"))
    start = time.perf_counter()
    frames = [image for _, image in footage.frames(first, last)]
    timings["decode"] = time.perf_counter() - start
    start = time.perf_counter()
    try:
        track = tracker.track(frames, footage.info.fps, head)
    finally:
        tracker.close()
    timings["detect"] = time.perf_counter() - start
    sink.progress("detect", len(frames), len(frames))
    confidence = np.repeat(track.found[:, None], 68, axis=1).astype(np.float32)
    detections = Detections(track.landmarks, confidence, track.found)
    points = head.posed_vertices(track.weights)[:, head.landmark_vertex]
    camera = np.einsum("fij,fvj->fvi", track.head_pose[:, :3, :3], points) + track.head_pose[:, None, :3, 3]
    projected = project(torch.as_tensor(camera, dtype=torch.float32),
                        torch.as_tensor(track.intrinsics))[..., :2].numpy()
    error = np.linalg.norm(projected - track.landmarks, axis=-1)[:, head.landmark_mask].mean(1)
    return detections, FitResult(rotation=track.head_pose[:, :3, :3], translation=track.head_pose[:, :3, 3],
                                 weights=track.weights, focal=float(track.intrinsics[0, 0]),
                                 projected=projected.astype(np.float32),
                                 residual_px=np.where(track.found, error, np.nan).astype(np.float32))


def hold_untracked(values: np.ndarray, tracked: np.ndarray) -> np.ndarray:
    """Replace untracked frames' values (axis 0) by those of the nearest tracked frame."""
    tracked_idx = np.flatnonzero(tracked)
    nearest = tracked_idx[np.abs(np.arange(len(tracked))[:, None] - tracked_idx[None]).argmin(1)]
    return values[nearest]


def assemble(head: HeadAsset, frames: np.ndarray, detections: Detections, fit: FitResult,
             width: int, height: int) -> TrackingArrays:
    """The tracking arrays of DESIGN.md from a fit; untracked frames hold the nearest tracked."""
    tracked = detections.found
    weights = hold_untracked(fit.weights, tracked)
    rotation = hold_untracked(fit.rotation, tracked)
    translation = hold_untracked(fit.translation, tracked)
    projected = hold_untracked(fit.projected, tracked)
    pose = np.tile(np.eye(4, dtype=np.float32), (len(frames), 1, 1))
    pose[:, :3, :3], pose[:, :3, 3] = rotation, translation
    intrinsics = np.array([[fit.focal, 0, (width - 1) / 2], [0, fit.focal, (height - 1) / 2],
                           [0, 0, 1]], np.float32)
    residual = np.nan_to_num(fit.residual_px / np.maximum(inter_ocular(detections.points), 1.0), nan=1.0)
    confidence = np.where(tracked, np.clip(1.0 - residual / 0.1, 0.05, 1.0), 0.0)
    return TrackingArrays(
        frames=frames,
        vertices=head.posed_vertices(weights).astype(np.float32),
        head_pose=pose,
        intrinsics=intrinsics,
        confidence=confidence.astype(np.float32),
        landmarks_2d=detections.points,
        landmarks_conf=detections.confidence,
        landmarks_fit=projected,
        optional={"weights": weights.astype(np.float32),
                  "weight_names": np.array(head.blendshape_names, dtype=str)},
    )


def run_track(settings: TrackSettings, sink: EventSink) -> Path:
    """Track `settings.footage` and write the results directory; returns its path."""
    refuse_existing(settings.out, settings.overwrite)
    if settings.texture_size != 0 and not 16 <= settings.texture_size <= 4096:
        raise BadInput(f"--texture-size {settings.texture_size}: use 0 (no textures) or 16-4096")
    timings: dict[str, float] = {}
    start = time.perf_counter()
    footage = Footage(settings.footage, fps=settings.fps)
    info = footage.info
    first, last = parse_frame_range(settings.frames, info.frame_count)
    head = resolve_head(settings.head)
    check_head_for_tracking(head)
    timings["load"] = time.perf_counter() - start
    sink.log(f"tracking {info.path} frames {first}-{last} ({info.width}x{info.height}, "
             f"{info.fps:g} fps) with head {settings.head} on {settings.device}")

    if settings.tracker == TRACKER_NAME:
        detections = detect_landmarks(footage, first, last, settings.detector, settings.device,
                                      sink, timings)
    else:
        detections, baseline = face_landmarker_baseline(footage, first, last, head, sink, timings)
    if not detections.found.any():
        raise NoFace(f"no face found in any frame of {info.path} (frames {first}-{last}); "
                     "the tracker needs a visible face")
    untracked = (np.flatnonzero(~detections.found) + first).tolist()
    if untracked:
        sink.warning(f"{len(untracked)} frame(s) without a face, values held from the nearest "
                     f"tracked frame: {_ranges(untracked)}")

    start = time.perf_counter()
    if settings.tracker == TRACKER_NAME:
        fit = fit_landmarks(head, detections.points, detections.confidence, info.width,
                            info.height, settings.fit, settings.device,
                            on_step=lambda done, total: sink.progress("fit", done, total))
    else:
        fit = baseline
    timings["fit"] = time.perf_counter() - start

    start = time.perf_counter()
    frames = np.arange(first, last + 1, dtype=np.int64)
    tracking = assemble(head, frames, detections, fit, info.width, info.height)
    tracked = detections.found
    residual = fit.residual_px[tracked]
    iod = np.maximum(inter_ocular(detections.points)[tracked], 1.0)
    summary = {
        "tracker": settings.tracker,
        "source": {"path": str(Path(info.path).resolve()), "fps": info.fps,
                   "width": info.width, "height": info.height,
                   "frame_range": [first, last], "frame_count": info.frame_count},
        "model": head_id(settings.head),
        "intrinsics": tracking.intrinsics.tolist(),
        "settings": {"detector": settings.detector, "device": settings.device,
                     "texture_size": settings.texture_size,
                     "fit": asdict(settings.fit)},
        "metrics": {
            "landmark_reprojection_px": float(np.mean(residual)),
            "landmark_reprojection_px_p95": float(np.percentile(residual, 95)),
            "landmark_reprojection_nme": float(np.mean(residual / iod)),
            "frames_tracked": int(tracked.sum()),
            "frames_total": len(frames),
            "focal_px": fit.focal,
        },
        "warnings": {"untracked_frames": untracked},
        "timings_s": timings,
    }
    with atomic_directory(settings.out, settings.overwrite) as tmp:
        write_arrays(tmp, tracking, head)
        timings["write"] = time.perf_counter() - start
        if settings.texture_size > 0:
            start = time.perf_counter()
            write_projected_textures(tmp, footage, tracking.as_dict(), head, settings.texture_size,
                                     settings.device, sink)
            timings["textures"] = time.perf_counter() - start
        summary["timings_s"] = {k: round(v, 3) for k, v in timings.items()}
        write_summary(tmp, summary, head)
    sink.log(f"landmark reprojection error {summary['metrics']['landmark_reprojection_px']:.2f} px "
             f"over {int(tracked.sum())}/{len(frames)} tracked frames")
    return settings.out


def _ranges(indices: list[int]) -> str:
    """[1, 2, 3, 7] -> '1-3, 7'."""
    parts, start = [], indices[0]
    for prev, cur in zip(indices, [*indices[1:], None], strict=False):
        if cur != prev + 1:
            parts.append(f"{start}-{prev}" if prev != start else f"{start}")
            start = cur
    return ", ".join(parts)


def check_head_for_tracking(head: HeadAsset) -> None:
    if head.landmark_mask.sum() < 6:
        raise BadInput("the head has fewer than 6 usable landmarks (landmark_mask); re-export it")
