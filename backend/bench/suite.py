"""`bench suite [--quick] [--json PATH] [--work DIR]`: every tracker and baseline on every
evaluation clip, in one run.

Clips of three kinds: `truth` (make-benchmark clips rendered with Cycles, scored against their
ground truth), `real` (the real videos in FACEADAPT_DATA/videos, scored against an independent
detector, by jitter, photometric error and frames tracked) and `photos` (the annotated photos,
NME against the human annotation). Methods are the trackers `track --tracker` offers: FaceAdapt's
landmark fit and the MediaPipe Face Landmarker baseline (blendshape scores and transformation
matrix: what the open-source Blender face-capture add-ons do). Later trackers join METHODS.

Everything made along the way (clips, results, per-clip scores) is kept under --work, keyed by
what made it, so an interrupted suite resumes; the report (JSON, markdown, plots, contact
sheets) is written from the kept scores. Report layout: see `suite_report.py`.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ..benchmark.clips import QUICK_CLIPS, STANDARD_CLIPS, ClipSpec
from ..benchmark.make_benchmark import FOOTAGE, HEAD, make_benchmark
from ..data_location import data_dir
from ..device import resolve_device
from ..evaluation.evaluate import evaluate_against_truth, evaluate_real
from ..events import EventSink
from ..formats.atomic import atomic_file
from ..formats.errors import BadInput
from ..track import TrackSettings, run_track

METHODS = {
    "landmark-fit": "FaceAdapt's landmark-fitting tracker (MediaPipe landmarks, joint fit of "
                    "pose, ARKit weights and focal length over the clip)",
    "mediapipe-blendshapes": "MediaPipe Face Landmarker: its 52 blendshape scores on the head's "
                             "ARKit shapes and its transformation matrix as pose (what today's "
                             "open-source Blender face-capture add-ons do)",
}
REAL_FRAMES_FULL = 300  # frames scored per real clip (the first ones)
REAL_FRAMES_QUICK = 60
QUICK_REAL_CLIPS = ("lp_driving_d0.mp4",)
PHOTOMETRIC_STEP = 3  # every third frame in the photometric error of real clips
SEED = 0


def real_videos(quick: bool) -> list[Path]:
    """The real clips scored: all of FACEADAPT_DATA/videos (manifest order), or the quick one."""
    folder = data_dir() / "videos"
    manifest = json.loads((folder / "manifest.json").read_text())
    names = [entry["file"] for entry in manifest]
    return [folder / n for n in (QUICK_REAL_CLIPS if quick else names)]


def annotated_photos() -> list[tuple[Path, Path]]:
    """(image, .pts) pairs of FACEADAPT_DATA/landmarks."""
    folder = data_dir() / "landmarks"
    pairs = []
    for pts in sorted(folder.glob("*.pts")):
        image = next((p for p in folder.glob(pts.stem + ".*") if p.suffix != ".pts"), None)
        if image is not None:
            pairs.append((image, pts))
    return pairs


def _cached_json(path: Path, make: Callable[[], dict]) -> dict:
    """The JSON at `path`, made (and written atomically) by make() when absent."""
    if path.is_file():
        return json.loads(path.read_text())
    value = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(value, indent=1) + "\n")
    return value


def _track(footage: Path, out: Path, head: str, method: str, device: str, frames: str | None,
           fps: float | None, sink: EventSink) -> Path:
    """Results of `method` on `footage` in `out`, tracked unless already there."""
    if (out / "result.json").is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    run_track(TrackSettings(footage=footage, out=out, frames=frames, head=head, device=device,
                            overwrite=True, fps=fps, texture_size=0, tracker=method), sink)
    return out


def _track_seconds(results: Path) -> float:
    timings = json.loads((results / "result.json").read_text())["timings_s"]
    return float(sum(timings.values()))


def score_truth_clip(clip: Path, method: str, work: Path, device: str, sink: EventSink) -> dict:
    """Track a make-benchmark clip with `method` and score it against the truth; per-frame and
    per-vertex errors are saved beside the scores for the plots."""
    results = work / "results" / method / clip.name
    scores_path = work / "scores" / method / f"{clip.name}.json"

    def make() -> dict:
        _track(clip / FOOTAGE, results, str(clip / HEAD), method, device, None, None, sink)
        report, errors = evaluate_against_truth(results, clip, None)
        np.savez(scores_path.with_suffix(".npz"), frames=errors.frame_indices,
                 vertex_mm_per_frame=errors.vertex_mm_per_frame,
                 vertex_mm_per_vertex=errors.vertex_mm_per_vertex)
        return {**report, "track_seconds": _track_seconds(results)}

    scores_path.parent.mkdir(parents=True, exist_ok=True)
    return _cached_json(scores_path, make)


def score_real_clip(video: Path, frames: int, method: str, work: Path, device: str,
                    sink: EventSink) -> dict:
    results = work / "results" / method / video.stem
    scores_path = work / "scores" / method / f"{video.stem}.json"

    def make() -> dict:
        from ..footage import Footage

        last = min(frames, Footage(video).info.frame_count) - 1
        _track(video, results, "default", method, device, f"0-{last}", None, sink)
        report = evaluate_real(results, video, "default", device, PHOTOMETRIC_STEP, sink)
        return {**report, "track_seconds": _track_seconds(results)}

    return _cached_json(scores_path, make)


def score_photos(method: str, work: Path, device: str, sink: EventSink) -> dict:
    """NME of `method`'s fitted landmarks on each annotated photo (tracked as a one-frame clip),
    against the human annotation over the 68 points (inter-ocular normalised)."""
    from ..formats.results_dir import read_results
    from ..landmarks.annotations import read_pts
    from ..landmarks.nme import nme

    def make() -> dict:
        per_photo: dict[str, float | None] = {}
        for image, pts in annotated_photos():
            folder = work / "photos" / image.stem
            if not folder.is_dir():
                folder.mkdir(parents=True)
                shutil.copy(image, folder / image.name)
            results = work / "results" / method / f"photo-{image.stem}"
            try:
                _track(folder, results, "default", method, device, None, 25.0, sink)
            except BadInput as exc:  # no face found: counted, not averaged
                sink.warning(f"{method} on {image.name}: {exc}")
                per_photo[image.name] = None
                continue
            tracking = read_results(results).tracking
            if tracking["confidence"][0] <= 0:
                per_photo[image.name] = None
                continue
            per_photo[image.name] = float(nme(tracking["landmarks_fit"][0], read_pts(pts)))
        scored = [v for v in per_photo.values() if v is not None]
        return {"kind": "photos", "tracker": method, "per_photo_nme": per_photo,
                "nme_mean": float(np.mean(scored)) if scored else float("nan"),
                "photos": len(per_photo), "photos_tracked": len(scored)}

    return _cached_json(work / "scores" / method / "photos.json", make)


def clip_entry(spec: ClipSpec, clip: Path) -> dict:
    info = json.loads((clip / "clip.json").read_text())
    return {"name": spec.name, "kind": "truth", "head": spec.head, "performance": spec.performance,
            "performance_source": info["performance_source"], "frames": info["render"]["frames"],
            "fps": info["render"]["fps"], "domain": spec.as_dict()["domain"],
            "render_seconds": info["render"]["render_seconds"], "folder": str(clip)}


def run_suite(args: argparse.Namespace, sink: EventSink) -> dict:
    """Run (or resume) the suite and write its report; returns the JSON document."""
    from .suite_report import write_report

    start = time.perf_counter()
    device = resolve_device(args.device)
    quick = bool(args.quick)
    work = Path(args.work) / ("quick" if quick else "full")
    specs = QUICK_CLIPS if quick else STANDARD_CLIPS
    clips = make_benchmark(specs, work / "clips", SEED, sink)
    render_seconds = time.perf_counter() - start
    real = real_videos(quick)
    real_frames = REAL_FRAMES_QUICK if quick else REAL_FRAMES_FULL
    entries = [clip_entry(spec, clip) for spec, clip in zip(specs, clips, strict=True)]
    for video in real:
        entries.append({"name": video.stem, "kind": "real", "file": video.name,
                        "frames": real_frames})
    entries.append({"name": "annotated-photos", "kind": "photos",
                    "photos": [image.name for image, _ in annotated_photos()]})
    methods = []
    jobs = len(METHODS) * (len(clips) + len(real) + 1)
    done = 0
    for method, description in METHODS.items():
        per_clip: dict[str, dict] = {}
        for clip in clips:
            per_clip[clip.name] = score_truth_clip(clip, method, work, device, sink)
            done += 1
            sink.progress("suite", done, jobs)
        for video in real:
            per_clip[video.stem] = score_real_clip(video, real_frames, method, work, device, sink)
            done += 1
            sink.progress("suite", done, jobs)
        per_clip["annotated-photos"] = score_photos(method, work, device, sink)
        done += 1
        sink.progress("suite", done, jobs)
        methods.append({"name": method, "description": description, "clips": per_clip})
    usage_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    usage_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    document = {
        "benchmark": "suite",
        "quick": quick,
        "command": "python -m backend bench suite" + (" --quick" if quick else ""),
        "seed": SEED,
        "work": str(work),
        "machine": {"platform": platform.platform(), "threads": torch.get_num_threads(),
                    "device": device},
        "seconds": round(time.perf_counter() - start, 1),
        "clip_making_seconds": round(render_seconds, 1),
        "peak_memory_mib": {"suite": round(usage_self, 1), "largest_subprocess":
                            round(usage_children, 1)},
        "clips": entries,
        "methods": methods,
    }
    report_path = Path(args.json) if args.json else work / "suite.json"
    write_report(document, report_path, sink)
    return document
