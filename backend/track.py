"""`track`: the pipeline that runs any registered tracker on footage.

decode -> detect (when the tracker needs detections) -> tracker -> assemble -> write. What a
tracker is given and returns: backend/trackers/interface.py; which trackers exist and what
each needs: backend/trackers/registry.py.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

from .adaptation.config import AdaptationConfig
from .config_parser import nested, option, positional, required
from .detection_cache import clip_detections, detections_key
from .events import EventSink
from .footage import Footage, parse_frame_range
from .formats.atomic import atomic_directory
from .formats.errors import BadInput, NoFace
from .formats.head_file import HeadAsset
from .formats.results_dir import (
    RESULTS_DIRECTORY,
    TrackingArrays,
    write_arrays,
    write_summary,
)
from .heads.default_head import head_id, resolve_head
from .landmarks.nme import clip_inter_ocular
from .projected_textures import write_projected_textures
from .stage_cache import stage_cache_limit_bytes
from .trackers.interface import ClipFrames, TrackerInput, TrackerOutput
from .trackers.registry import ADAPTATION_TRACKERS, DEFAULT_TRACKER, TRACKERS, tracker_entry, tracker_names
from .trackers.untracked_frames import frame_ranges, hold_untracked

T = TypeVar("T")


@dataclass
class TrackSettings:
    """What `track` does (the command's options); device is a resolved torch device."""

    footage: Path = positional("movie file or folder of images")
    out: Path = required("results directory to create")
    frames: str | None = option(None, "A-B, 0-based inclusive source frames (default: all)")
    head: str = option("default", "'default' or a head.npz path (the landmark fit and MediaPipe; a "
                       "face-model tracker tracks its model's head)")
    model: str = option("default", "face model of the DAM trackers: 'default', a name in the user's "
                        "models folder, or a model folder (python -m backend models lists them)")
    detector: Literal["mediapipe", "fan"] = option(
        "mediapipe", "landmark detector, for trackers that need detections")
    device: str = "cpu"
    overwrite: bool = option(False, "replace an existing --out (a FaceAdapt results directory)")
    fps: float | None = option(None, "frame rate of an image sequence (default 25)")
    texture_size: int = option(512, "size of textures/projected/*.png (UV texels; 0 writes none)")
    tracker: str = option(DEFAULT_TRACKER, "; ".join(f"{e.name}: {e.description} (needs {e.needs()})"
                                                    for e in TRACKERS.values()),
                          choices=tracker_names())
    adaptation: AdaptationConfig = nested(AdaptationConfig)  # --adapt-*: adapted and latent-fit
    tracker_config: Any = None  # the tracker's own settings (its config_type); None: its defaults

    def __post_init__(self) -> None:
        if self.texture_size != 0 and not 16 <= self.texture_size <= 4096:
            raise BadInput(f"--texture-size {self.texture_size}: use 0 (no textures) or 16-4096")
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise BadInput(f"--fps {self.fps}: must be a finite number above 0 (frames per second)")


def assemble(frames: np.ndarray, output: TrackerOutput) -> TrackingArrays:
    """The tracking arrays of DESIGN.md from a tracker's output; untracked frames hold the
    nearest tracked frame's values and get confidence 0."""
    tracked = output.tracked
    landmarks = output.landmarks
    iod = clip_inter_ocular(landmarks.points, landmarks.confidence)
    residual = np.nan_to_num(output.residual_px / iod, nan=1.0)
    # Full confidence up to no residual, falling to 0.05 at a tenth of the inter-ocular distance.
    confidence = np.where(tracked, np.clip(1.0 - residual / 0.1, 0.05, 1.0), 0.0)
    optional: dict[str, np.ndarray] = {}
    if output.weights is not None:
        optional["weights"] = hold_untracked(output.weights, tracked).astype(np.float32, copy=False)
        optional["weight_names"] = np.array(output.weight_names, dtype=str)
    if output.latent is not None:
        optional["latent"] = hold_untracked(output.latent, tracked).astype(np.float32, copy=False)
    return TrackingArrays(
        frames=frames,
        vertices=hold_untracked(output.vertices, tracked).astype(np.float32, copy=False),
        head_pose=hold_untracked(output.head_pose, tracked).astype(np.float32, copy=False),
        intrinsics=output.intrinsics.astype(np.float32),
        confidence=confidence.astype(np.float32),
        landmarks_2d=landmarks.points,
        landmarks_conf=landmarks.confidence,
        landmarks_fit=hold_untracked(output.landmarks_fit, tracked),
        optional=optional,
    )


def run_track(settings: TrackSettings, sink: EventSink) -> Path:
    """Track `settings.footage` and write the results directory; returns its path. Every
    refusal of the options and of --out comes before the footage is decoded."""
    stage_cache_limit_bytes()  # a bad $FACEADAPT_STAGE_CACHE_GB is refused now, not after the work
    # Claimed here, not after the work: a read-only or busy --out fails in a second.
    with atomic_directory(settings.out, settings.overwrite, RESULTS_DIRECTORY,
                          inputs=(settings.footage,)) as tmp:
        _track_into(tmp, settings, sink)
    return settings.out


def _track_into(tmp: Path, settings: TrackSettings, sink: EventSink) -> None:
    """Track and write the results directory's files into the empty directory `tmp`."""
    entry = tracker_entry(settings.tracker)
    config = settings.tracker_config
    if config is None and settings.tracker in ADAPTATION_TRACKERS:
        config = entry.tracker_class().config_type(adaptation=settings.adaptation)
    tracker = entry.create(config)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    data_files = entry.resolve_data_files()
    footage = Footage(settings.footage, fps=settings.fps)
    info = footage.info
    first, last = parse_frame_range(settings.frames, info.frame_count)
    model_folder = None
    if entry.needs_model:
        model_folder, head = tracker.open_model(settings.model)
        if settings.head != "default" and resolve_head(settings.head).topology_hash != head.topology_hash:
            raise BadInput(f"--head {settings.head}: the {entry.name} tracker tracks its face model's "
                           f"own head (topology {head.topology_hash}), and this head is another; "
                           "choose the model with --model (--head serves the landmark fit and MediaPipe)")
    else:
        head = resolve_head(settings.head)
    check_head_for_tracking(head)
    timings["load"] = time.perf_counter() - start
    timings["decode"] = 0.0  # filled in once every pass over the frames is done
    sink.log(f"tracking {info.path} frames {first}-{last} ({info.width}x{info.height}, "
             f"{info.fps:g} fps) with {entry.name} and head {settings.head} on {settings.device}")

    frames = ClipFrames(footage, first, last)
    detections = key = None
    if entry.needs_detections:
        key = detections_key(settings.footage, first, last, info.fps, settings.detector)
        detections, timings["detect"] = _without_decoding(frames, lambda: clip_detections(
            frames, key, settings.detector, settings.device, sink))
        _require_a_face(detections.found, info.path, first, last)
    clip = TrackerInput(head=head, frame_count=len(frames), width=info.width, height=info.height,
                        fps=info.fps, device=settings.device, sink=sink, detections=detections,
                        frames=frames if entry.needs_frames else None, data_files=data_files,
                        model_folder=model_folder, clip_key=key)
    output, timings["track"] = _without_decoding(frames, lambda: tracker.track(clip))
    timings["decode"] = frames.decode_s
    output.check(entry.name, len(frames), head.num_vertices)
    tracked = output.tracked
    _require_a_face(tracked, info.path, first, last)
    untracked = (np.flatnonzero(~tracked) + first).tolist()
    if untracked:
        sink.warning(f"{len(untracked)} frame(s) without a face, values held from the nearest "
                     f"tracked frame: {frame_ranges(untracked)}")

    start = time.perf_counter()
    tracking = assemble(np.arange(first, last + 1, dtype=np.int64), output)
    residual = output.residual_px[tracked]
    iod = clip_inter_ocular(output.landmarks.points, output.landmarks.confidence)[tracked]
    summary = {
        "tracker": entry.name,
        "source": {"path": str(Path(info.path).resolve()), "fps": info.fps,
                   "width": info.width, "height": info.height, "rotation": info.rotation,
                   "frame_range": [first, last], "frame_count": info.frame_count},
        "model": head_id(settings.head) if model_folder is None else head_id(str(model_folder)),
        "intrinsics": tracking.intrinsics.tolist(),
        **tracker.result_fields(),
        "settings": {"detector": settings.detector if entry.needs_detections else None,
                     "device": settings.device, "texture_size": settings.texture_size,
                     "tracker": tracker.settings()},
        "metrics": {
            "landmark_reprojection_px": float(np.mean(residual)),
            "landmark_reprojection_px_p95": float(np.percentile(residual, 95)),
            "landmark_reprojection_nme": float(np.mean(residual / iod)),
            "frames_tracked": int(tracked.sum()),
            "frames_total": len(frames),
            "focal_px": float(output.intrinsics[0, 0]),
            **output.metrics,
        },
        "warnings": {"untracked_frames": untracked},
        "timings_s": timings,
    }
    write_arrays(tmp, tracking, head)
    timings["write"] = time.perf_counter() - start
    if settings.texture_size > 0:
        start = time.perf_counter()
        write_projected_textures(tmp, footage, tracking.as_dict(), head, settings.texture_size,
                                 settings.device, sink)
        timings["textures"] = time.perf_counter() - start
    timings.update(tracker.write_files(tmp, tracking, head, settings.texture_size, settings.device, sink))
    summary["timings_s"] = {k: round(v, 3) for k, v in timings.items()}
    write_summary(tmp, summary, head)
    sink.log(f"landmark reprojection error {summary['metrics']['landmark_reprojection_px']:.2f} px "
             f"over {int(tracked.sum())}/{len(frames)} tracked frames")


def _without_decoding(frames: ClipFrames, stage: Callable[[], T]) -> tuple[T, float]:
    """stage()'s result and seconds, less the time it spent decoding frames (its own stage)."""
    decoded, start = frames.decode_s, time.perf_counter()
    result = stage()
    return result, time.perf_counter() - start - (frames.decode_s - decoded)


def _require_a_face(tracked: np.ndarray, path: Path, first: int, last: int) -> None:
    if not tracked.any():
        raise NoFace(f"no face found in any frame of {path} (frames {first}-{last}); "
                     "the tracker needs a visible face")


def check_head_for_tracking(head: HeadAsset) -> None:
    if head.landmark_mask.sum() < 6:
        raise BadInput("the head has fewer than 6 usable landmarks (landmark_mask); re-export it")
