"""`suite [--quick] [--json PATH] [--work DIR]`: every tracker and baseline on every evaluation
clip, in one run.

Clips of three kinds: `truth` (make-benchmark clips rendered with Cycles, scored against their
ground truth), `real` (the real videos in FACEADAPT_DATA/videos, scored against an independent
detector, by jitter, photometric error and frames tracked) and `photos` (the annotated photos,
NME against the human annotation). Methods: suite_methods.METHODS, the trackers `track
--tracker` offers, and on ground-truth clips the adaptation's ablation rows
(suite_methods.ABLATIONS: `adapted` with one loss term off). Reference rows on ground-truth
clips (yardsticks.py): the neutral head and the DAM oracle, scored like the methods and shown
apart from them.

Everything made along the way (clips, results, per-clip scores) is kept under --work, keyed by
what made it (suite_cache.py), so an interrupted suite resumes and a changed tracker, setting,
model or clip is run again; the report (JSON, markdown, plots, contact sheets) is written from
the kept scores. Report layout: see `suite_report.py`.
"""

from __future__ import annotations

import json
import platform
import resource
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..adaptation.config import AdaptationConfig
from ..config_parser import option
from ..dam.model_folder import load_model_head, resolve_model
from ..data_location import data_dir
from ..detection_cache import footage_detections
from ..events import EventSink
from ..formats.atomic import atomic_directory, atomic_file
from ..formats.errors import BadInput
from ..formats.head_file import load_head
from ..formats.results_dir import read_results
from ..track import TrackSettings, run_track
from ..trackers.registry import ADAPTED_TRACKER, tracker_entry
from .clip_making import FOOTAGE, HEAD, TRUTH, make_clips
from .clip_specs import QUICK_CLIPS, STANDARD_CLIPS, ClipSpec
from .code_closure import BACKEND_ROOT
from .decoded_texture_psnr import decoded_texture_psnr
from .evaluate import evaluate_against_truth, evaluate_real
from .photo_metrics import photo_nme, photos_summary
from .suite_cache import (
    cached_results,
    cached_value,
    file_digest,
    files_digest,
    head_digest,
    load_arrays,
    sources_key,
)
from .suite_methods import (
    ABLATIONS,
    METHODS,
    Ablation,
    method_sources,
    reference_sources,
    scoring_sources,
)
from .suite_report import REFERENCE_SCORES
from .yardsticks import DETECTION_ORACLE, ORACLE_DETECTOR, REFERENCE_SETTINGS, REFERENCES, reference_on_clip

REAL_FRAMES_FULL = 300  # frames scored per real clip (the first ones)
REAL_FRAMES_QUICK = 60
QUICK_REAL_CLIPS = ("lp_driving_d0.mp4",)
PHOTOMETRIC_STEP = 3  # every third frame in the photometric error of real clips
PHOTOS = "annotated-photos"  # the name of the photos' entry in the report
PHOTO_FPS = 25.0  # an annotated photo is tracked as a one-frame image sequence
SEED = 0
# Per-frame and per-vertex arrays kept beside a truth clip's scores, for the report's plots.
TRUTH_ARRAYS = ("frames", "vertex_mm_per_frame", "vertex_mm_per_vertex")
# TrackSettings fields that say where, not how: the clip's content and the head's enter the
# key as digests instead.
_TRACK_LOCATIONS = ("footage", "out", "overwrite", "head")


@dataclass(frozen=True)
class SuiteSettings:
    """quick: the few-minute version; work: folder of clips, results and scores, kept so a
    run resumes; report: the JSON report (default work/<quick|full>/suite.json), the rest
    beside it; device: a resolved torch device."""

    quick: bool = option(False, "the few-minute version")
    work: Path = option(Path("out/suite"), "folder of clips, results and scores, kept so a run resumes")
    report: Path | None = option(None, "the report (default: WORK/quick|full/suite.json; markdown, "
                                 "plots and contact sheets beside it)", flag="--json")
    clips: str | None = option(None, "comma-separated clip names to score alone (ground-truth clips, real "
                               "video names without extension, annotated-photos); default: all")
    real_frames: int | None = option(None, "frames scored per real clip, the first ones (default: 300, "
                                     "quick 60)")
    device: str = "cpu"


def chosen(names: list[str], wanted: str | None) -> set[str]:
    """The names `wanted` (comma-separated) picks from `names`; all of them for None. BadInput
    naming any that is not there."""
    if wanted is None:
        return set(names)
    picked = {name.strip() for name in wanted.split(",") if name.strip()}
    unknown = sorted(picked - set(names))
    if unknown or not picked:
        raise BadInput(f"--clips: no clip named {', '.join(unknown) or '(none given)'}; this set has "
                       + ", ".join(names))
    return picked


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


class SuiteKeys:
    """The cache keys of one suite run. Code, models and heads are hashed once per run.

    code_root: the folder the sources of suite_methods.py are read from (the backend package)."""

    def __init__(self, code_root: Path = BACKEND_ROOT) -> None:
        self.code_root = code_root
        self._methods: dict[str, dict[str, Any]] = {}
        self._scoring: dict[str, dict[str, Any]] = {}
        self._heads: dict[str, str] = {}
        self._references: dict[str, dict[str, Any]] = {}

    def method(self, name: str) -> dict[str, Any]:
        """Code digest, model file digests and package versions of a method."""
        if name not in self._methods:
            self._methods[name] = sources_key(method_sources(name, self.code_root), self.code_root)
        return self._methods[name]

    def scoring(self, kind: str) -> dict[str, Any]:
        """The same for the code scoring a clip kind."""
        if kind not in self._scoring:
            self._scoring[kind] = sources_key(scoring_sources(kind, self.code_root), self.code_root)
        return self._scoring[kind]

    def reference(self, name: str) -> dict[str, Any]:
        """Code digest (with the model files it reads) and package versions of a reference row,
        and a fitted row's settings."""
        if name not in self._references:
            key = sources_key(reference_sources(name, self.code_root), self.code_root)
            if name in REFERENCE_SETTINGS:
                key["settings"] = REFERENCE_SETTINGS[name].as_dict()
            self._references[name] = key
        return self._references[name]

    def head(self, spec: str) -> str:
        """Content digest of the head `spec` names ('default', 'ict' or a head.npz path)."""
        if spec not in self._heads:
            from ..heads.default_head import resolve_head

            path = Path(spec)
            self._heads[spec] = head_digest(load_head(path) if path.is_file() else resolve_head(spec))
        return self._heads[spec]

    def tracking(self, settings: TrackSettings, clip_digest: str) -> dict[str, Any]:
        """What makes `settings`' results: the method, its settings (the tracker's own with
        their defaults filled in), its sources, the head's and the clip's content."""
        if settings.tracker_config is None:
            config_type = tracker_entry(settings.tracker).tracker_class().config_type
            settings = replace(settings, tracker_config=config_type() if config_type else None)
        how = {k: v for k, v in asdict(settings).items() if k not in _TRACK_LOCATIONS}
        return {"method": settings.tracker, "settings": how, **self.method(settings.tracker),
                "head": self.head(settings.head), "clip": clip_digest}


def tracked_results(settings: TrackSettings, keys: SuiteKeys, clip_digest: str, sink: EventSink) -> Path:
    """Results of `settings` in settings.out, tracked unless made by the same key."""
    key = keys.tracking(settings, clip_digest)
    return cached_results(settings.out, key, lambda _: run_track(settings, sink))


def _track_seconds(results: Path) -> float:
    timings = json.loads((results / "result.json").read_text())["timings_s"]
    return float(sum(timings.values()))


def score_truth_clip(clip: Path, method: str, work: Path, device: str, keys: SuiteKeys,
                     sink: EventSink, ablation: Ablation | None = None) -> dict | None:
    """Track a make-benchmark clip with `method` and score it against the truth; per-frame and
    per-vertex errors are saved beside the scores (TRUTH_ARRAYS) for the plots. A face-model
    tracker also gets the PSNR of its decoded texture over the frames
    (decoded_texture_psnr.py), and None on a clip of another head than its model's. With an
    `ablation`, `method` is adapted with that loss term off, its results and scores filed under
    the ablation's name."""
    entry = tracker_entry(method)
    model_folder = resolve_model("default") if entry.needs_model else None  # track's default --model
    if model_folder is not None and (load_head(clip / HEAD).topology_hash
                                     != load_model_head(model_folder).topology_hash):
        return None
    row = ablation.name if ablation is not None else method
    settings = TrackSettings(footage=clip / FOOTAGE, out=work / "results" / row / clip.name,
                             head=str(clip / HEAD), device=device, overwrite=True, texture_size=0,
                             tracker=method)
    if ablation is not None:
        settings = replace(settings, adaptation=AdaptationConfig(**ablation.overrides))
    clip_digest = files_digest(clip, [clip / name for name in (FOOTAGE, TRUTH, HEAD)])
    scores_path = work / "scores" / row / f"{clip.name}.json"
    arrays_path = scores_path.with_suffix(".npz")
    key = {"results": keys.tracking(settings, clip_digest), "scoring": keys.scoring("truth")}

    def make() -> dict:
        results = tracked_results(settings, keys, clip_digest, sink)
        report, errors = evaluate_against_truth(results, clip, None)
        _save_truth_arrays(arrays_path, errors)
        if model_folder is not None:
            decoded = decoded_texture_psnr(read_results(results).tracking, clip / FOOTAGE, model_folder,
                                           load_model_head(model_folder), device, PHOTOMETRIC_STEP)
            report["decoded_texture_psnr_db"] = decoded["psnr_db"]
        return {**report, "track_seconds": _track_seconds(results)}

    def check(scores: dict) -> None:
        arrays = load_arrays(arrays_path, TRUTH_ARRAYS)
        if len(arrays["vertex_mm_per_frame"]) != scores["frames"]:
            raise ValueError(f"{arrays_path} does not hold the scored frames of {scores_path}")

    arrays_path.parent.mkdir(parents=True, exist_ok=True)
    return cached_value(scores_path, key, make, check)


def _save_truth_arrays(path: Path, errors: Any, **extra: np.ndarray) -> None:
    """The per-frame and per-vertex errors (TRUTH_ARRAYS) of a scored truth clip, for the plots."""
    with atomic_file(path) as tmp, open(tmp, "wb") as stream:
        np.savez(stream, frames=errors.frame_indices, vertex_mm_per_frame=errors.vertex_mm_per_frame,
                 vertex_mm_per_vertex=errors.vertex_mm_per_vertex, **extra)


def score_reference_clip(clip: Path, name: str, work: Path, device: str, keys: SuiteKeys,
                         sink: EventSink | None = None) -> dict | None:
    """The reference row `name` (yardsticks.REFERENCES) on a make-benchmark clip, scored like a
    method (arrays saved beside the scores as score_truth_clip does, plus the oracle's latent);
    None where the row does not apply (the oracles on another head than the model's). The
    detection oracle's key holds the footage too (its detections are the footage's)."""
    files = (TRUTH, HEAD, FOOTAGE) if name == DETECTION_ORACLE else (TRUTH, HEAD)
    clip_digest = files_digest(clip, [clip / file for file in files])
    scores_path = work / "scores" / REFERENCE_SCORES / name / f"{clip.name}.json"
    arrays_path = scores_path.with_suffix(".npz")
    key = {"reference": name, **keys.reference(name), "clip": clip_digest,
           "scoring": keys.scoring("truth")}

    def make() -> dict | None:
        result = reference_on_clip(name, clip, device=device, detect=lambda: footage_detections(
            clip / FOOTAGE, ORACLE_DETECTOR, device, sink or EventSink(json_lines=False)))
        if result is None:
            arrays_path.unlink(missing_ok=True)
            return None
        extra = {"latent": result.tracking["latent"]} if "latent" in result.tracking else {}
        _save_truth_arrays(arrays_path, result.errors, **extra)
        return {"kind": "truth", "reference": name, "truth": str(clip), **result.errors.as_dict(),
                "track_seconds": round(result.seconds, 2)}

    def check(scores: dict | None) -> None:
        if scores is not None:
            arrays = load_arrays(arrays_path, TRUTH_ARRAYS)
            if len(arrays["vertex_mm_per_frame"]) != scores["frames"]:
                raise ValueError(f"{arrays_path} does not hold the scored frames of {scores_path}")

    arrays_path.parent.mkdir(parents=True, exist_ok=True)
    return cached_value(scores_path, key, make, check)


def score_real_clip(video: Path, frames: int, method: str, work: Path, device: str, keys: SuiteKeys,
                    sink: EventSink) -> dict:
    """Track the first `frames` frames of a real clip with `method` and score them against
    the reference detector, by jitter, photometric error and frames tracked."""
    from ..footage import Footage

    last = min(frames, Footage(video).info.frame_count) - 1
    settings = TrackSettings(footage=video, out=work / "results" / method / video.stem,
                             frames=f"0-{last}", head="default", device=device, overwrite=True,
                             texture_size=0, tracker=method)
    clip_digest = file_digest(video)
    key = {"results": keys.tracking(settings, clip_digest), "scoring": keys.scoring("real"),
           "photometric_step": PHOTOMETRIC_STEP}

    def make() -> dict:
        results = tracked_results(settings, keys, clip_digest, sink)
        report = evaluate_real(results, video, "default", device, PHOTOMETRIC_STEP, sink)
        return {**report, "track_seconds": _track_seconds(results)}

    return cached_value(work / "scores" / method / f"{video.stem}.json", key, make)


def _photo_footage(image: Path, digest: str, work: Path) -> Path:
    """A folder holding `image` alone (an image sequence of one frame), replaced when it holds
    other content."""
    folder = work / "photos" / image.stem
    copy = folder / image.name
    if not (copy.is_file() and file_digest(copy) == digest and len(list(folder.iterdir())) == 1):
        with atomic_directory(folder, overwrite=True) as tmp:
            shutil.copy(image, tmp / image.name)
    return folder


def score_photos(method: str, work: Path, device: str, keys: SuiteKeys, sink: EventSink) -> dict:
    """NME of `method`'s fitted landmarks on each annotated photo (tracked as a one-frame clip),
    against the human annotation over the 68 points (inter-ocular normalised)."""
    photos = []
    for image, pts in annotated_photos():
        digest = file_digest(image)
        settings = TrackSettings(footage=work / "photos" / image.stem,
                                 out=work / "results" / method / f"photo-{image.stem}", head="default",
                                 device=device, overwrite=True, fps=PHOTO_FPS, texture_size=0,
                                 tracker=method)
        photos.append((image, pts, digest, settings))
    key = {"photos": [{"image": image.name, "results": keys.tracking(settings, digest),
                       "annotation": file_digest(pts)} for image, pts, digest, settings in photos],
           "scoring": keys.scoring("photos")}

    def make() -> dict:
        per_photo: dict[str, float | None] = {}
        for image, pts, digest, settings in photos:
            _photo_footage(image, digest, work)
            try:
                results = tracked_results(settings, keys, digest, sink)
            except BadInput as exc:  # no face found: counted, not averaged
                sink.warning(f"{method} on {image.name}: {exc}")
                per_photo[image.name] = None
                continue
            per_photo[image.name] = photo_nme(results, pts)
        return {"kind": "photos", "tracker": method, **photos_summary(per_photo)}

    return cached_value(work / "scores" / method / "photos.json", key, make)


def clip_entry(spec: ClipSpec, clip: Path) -> dict:
    info = json.loads((clip / "clip.json").read_text())
    return {"name": spec.name, "kind": "truth", "head": spec.head, "performance": spec.performance,
            "yaw_deg": spec.yaw_deg, "performance_source": info["performance_source"],
            "frames": info["render"]["frames"], "fps": info["render"]["fps"],
            "domain": spec.as_dict()["domain"], "render_seconds": info["render"]["render_seconds"],
            "occluded_landmarks_max": max(info["render"].get("occluded_landmarks") or [0]),
            "folder": str(clip)}


def run_suite(settings: SuiteSettings, sink: EventSink) -> Path:
    """Run (or resume) the suite and write its report; returns the JSON report's path."""
    from .suite_report import write_report

    start = time.perf_counter()
    device, quick = settings.device, settings.quick
    work = Path(settings.work) / ("quick" if quick else "full")
    specs = QUICK_CLIPS if quick else STANDARD_CLIPS
    real = real_videos(quick)
    picked = chosen([spec.name for spec in specs] + [video.stem for video in real] + [PHOTOS],
                    settings.clips)
    if settings.real_frames is not None and settings.real_frames < 3:
        raise BadInput(f"--real-frames {settings.real_frames}: at least 3 (jitter needs them)")
    specs = tuple(spec for spec in specs if spec.name in picked)
    real = [video for video in real if video.stem in picked]
    with_photos = PHOTOS in picked
    clips = make_clips(specs, work / "clips", SEED, sink)
    render_seconds = time.perf_counter() - start
    real_frames = settings.real_frames or (REAL_FRAMES_QUICK if quick else REAL_FRAMES_FULL)
    entries = [clip_entry(spec, clip) for spec, clip in zip(specs, clips, strict=True)]
    for video in real:
        entries.append({"name": video.stem, "kind": "real", "file": video.name,
                        "frames": real_frames})
    if with_photos:
        entries.append({"name": PHOTOS, "kind": "photos",
                        "photos": [image.name for image, _ in annotated_photos()]})
    keys = SuiteKeys()
    methods = []
    jobs = ((len(METHODS) * (len(clips) + len(real) + with_photos)) + len(REFERENCES) * len(clips)
            + len(ABLATIONS) * len(clips))
    done = 0
    references = []
    for name, description in REFERENCES.items():
        per_truth_clip: dict[str, dict] = {}
        for clip in clips:
            scores = score_reference_clip(clip, name, work, device, keys, sink)
            if scores is not None:
                per_truth_clip[clip.name] = scores
            done += 1
            sink.progress("suite", done, jobs)
        references.append({"name": name, "description": description, "clips": per_truth_clip})
    for method, description in METHODS.items():
        per_clip: dict[str, dict] = {}
        for clip in clips:
            truth_scores = score_truth_clip(clip, method, work, device, keys, sink)
            if truth_scores is not None:  # None: not applicable (a face model of another head)
                per_clip[clip.name] = truth_scores
            done += 1
            sink.progress("suite", done, jobs)
        for video in real:
            per_clip[video.stem] = score_real_clip(video, real_frames, method, work, device, keys, sink)
            done += 1
            sink.progress("suite", done, jobs)
        if with_photos:
            per_clip[PHOTOS] = score_photos(method, work, device, keys, sink)
            done += 1
            sink.progress("suite", done, jobs)
        methods.append({"name": method, "description": description, "clips": per_clip})
    for ablation in ABLATIONS:
        per_truth_clip = {}
        for clip in clips:
            truth_scores = score_truth_clip(clip, ADAPTED_TRACKER, work, device, keys, sink, ablation)
            if truth_scores is not None:
                per_truth_clip[clip.name] = truth_scores
            done += 1
            sink.progress("suite", done, jobs)
        if per_truth_clip:
            methods.append({"name": ablation.name, "description": ablation.description,
                            "clips": per_truth_clip})
    usage_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    usage_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    document = {
        "benchmark": "suite",
        "quick": quick,
        "command": "python -m backend suite" + (" --quick" if quick else "")
                   + (f" --clips {settings.clips}" if settings.clips else "")
                   + (f" --real-frames {settings.real_frames}" if settings.real_frames else ""),
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
        "references": references,
    }
    report_path = Path(settings.report) if settings.report else work / "suite.json"
    write_report(document, report_path, sink)
    return report_path
