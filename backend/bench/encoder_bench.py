"""`bench encoder`: frames/s of each stage of the encoder tracker on this machine, beside the
landmark fit and the MediaPipe baseline on the same clip and frames, and peak memory.

One run, one clip (default: the first 128 frames of lp_driving_d3): the frames are decoded
once; MediaPipe's landmarks are detected once (the detections every tracker here but the
MediaPipe baseline starts from); then
- landmark-fit and mediapipe-blendshapes, each through the tracker interface as `track` runs
  them (the baseline detects again itself: its figure includes MediaPipe);
- the encoder tracker's stages, timed apart: crop (place the box from the landmarks, cut and
  resample it), encode (the CNN and the crop -> camera pose), decode vertices (the frozen DAM
  decoder), ARKit solve (bounded least squares per frame onto the head's shapes), and apart,
  decoded textures (the DAM's view-dependent texture for the footage camera, on the first
  --texture-frames frames; PNG writing not included); encode, decode and textures at each
  batch size of --batches and each torch thread count of --threads (on a CPU other work
  shares, fewer threads can be faster: every small parallel op waits for its threads to be
  scheduled).
The issue's goal is 30 frames/s or more for vertices and pose (crop + encode + decode
vertices), textures measured apart. Speed does not depend on the encoder's weights: a model
without an encoder yet is measured with a seeded untrained one, and the report says so
(`encoder_weights`). The CPU may be shared: the report carries os.getloadavg() before and after.
"""

from __future__ import annotations

import os
import platform
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..config_parser import option, report_option
from ..data_location import data_file
from ..events import EventSink
from ..formats.errors import BadInput

DEFAULT_CLIP = "videos/lp_driving_d3.mp4"
GOAL_FRAMES_PER_S = 30.0
T = TypeVar("T")
NOTES = [
    "MediaPipe landmarks and the two baselines include their start-up (model loading), as in "
    "a track run; encode, decode and textures are timed after a one-batch warm-up.",
    "The landmark fit optimises the whole clip jointly for a fixed number of iterations, so its "
    "frames/s grows with the clip's length; the encoder's does not depend on it.",
    "vertices and pose = crop + encode + decode vertices (the issue's 30 frames/s goal); "
    "+ ARKit solve adds the weights the Blender side keys; + MediaPipe landmarks is the whole "
    "tracker from decoded frames. Decoded textures: decoding only, no PNG writing.",
    "process_rss_mib is the peak of the whole process (MediaPipe, both baselines, the DAM).",
    "Speed does not depend on the encoder's weights, except the ARKit solve's: an untrained "
    "encoder decodes near-neutral faces, which bounded least squares solves in fewer "
    "iterations than expressive ones.",
]


@dataclass(frozen=True)
class BenchEncoderConfig:
    footage: Path | None = option(None, f"clip to benchmark (default: {DEFAULT_CLIP} in the data)")
    frames: int = option(128, "frames from the start of the clip (0: all)")
    texture_frames: int = option(32, "frames whose decoded textures are timed (0: none)")
    model: str = option("default", "face model: 'default', a name in the user's models folder, or a "
                        "model folder (one without an encoder is timed with an untrained one)")
    batches: str = option("1,32", "comma-separated batch sizes of encode, decode and textures")
    threads: str = option("0,1", "comma-separated torch thread counts of encode, decode and textures "
                          "(0: torch's default, all cores)")
    json: Path | None = report_option()
    device: str = "cpu"


def _counts(text: str, option_name: str, lowest: int) -> list[int]:
    """The comma-separated integers of `text`, each at least `lowest`; BadInput otherwise."""
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < lowest:
        raise BadInput(f"{option_name} {text!r}: comma-separated whole numbers of {lowest} or more")
    return list(dict.fromkeys(counts))


def _rate(frames: int, seconds: float) -> dict[str, float | None]:
    return {"seconds": round(seconds, 3),
            "frames_per_s": round(frames / seconds, 1) if seconds > 0 else None}


def _timed(stage: Callable[[], T], device: str) -> tuple[T, float]:
    """stage()'s result and wall seconds (CUDA work finished before the clock stops)."""
    import torch

    start = time.perf_counter()
    result = stage()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


def _encoder_for(folder: Path, latent: int, device: str) -> tuple[Any, Any]:
    """(encoder in eval mode, what its weights are: "untrained" or encoder.json's run info)."""
    import torch

    from ..encoder.encoder_file import has_encoder, load_encoder
    from ..encoder.network import EncoderArchitecture, ImageEncoder

    if has_encoder(folder):
        encoder, info = load_encoder(folder, device)
        training = info.get("training")
        if not training:
            return encoder, "untrained"
        return encoder, {"training": training, "metrics": info.get("metrics"),
                         "capture": info.get("capture")}
    torch.manual_seed(0)
    encoder = ImageEncoder(EncoderArchitecture(latent=latent)).to(device).eval()
    return encoder, ("untrained (the model has no encoder yet: a seeded untrained one of the "
                     "default architecture; speed does not depend on the weights)")


def bench_encoder(config: BenchEncoderConfig, sink: EventSink) -> dict:
    import cv2
    import torch

    from ..dam.model_folder import load_model, load_model_head, resolve_model
    from ..decoded_textures import decode_textures, decoded_view_directions
    from ..detection_cache import detect_landmarks
    from ..encoder.crop import crop_frame
    from ..encoder.crop_pose import pose_from_crop
    from ..footage import Footage
    from ..formats.camera import centred_intrinsics
    from ..heads.default_head import resolve_head
    from ..lab.capture import face_centre_and_height
    from ..trackers.arkit_solve import solve_arkit_weights
    from ..trackers.interface import ClipFrames, TrackerInput
    from ..trackers.registry import tracker_entry

    batches = _counts(config.batches, "--batches", 1)
    default_threads = torch.get_num_threads()
    thread_counts = list(dict.fromkeys(n or default_threads
                                       for n in _counts(config.threads, "--threads", 0)))
    if config.frames < 0 or config.texture_frames < 0:
        raise BadInput("--frames and --texture-frames must be 0 or more")
    device = config.device
    load_before = os.getloadavg()
    footage_path = config.footage or data_file(DEFAULT_CLIP)
    footage = Footage(footage_path)
    info = footage.info
    count = info.frame_count if config.frames == 0 else min(config.frames, info.frame_count)
    last = count - 1
    folder = resolve_model(config.model)
    model_head = load_model_head(folder)
    dam, _ = load_model(folder, device)
    encoder, encoder_weights = _encoder_for(folder, dam.config.latent, device)
    size = encoder.config.crop_size
    sink.log(f"bench encoder: {info.path} frames 0-{last} ({info.width}x{info.height}), model "
             f"{folder}, encoder {encoder_weights if isinstance(encoder_weights, str) else 'trained'}, "
             f"{torch.get_num_threads()} torch threads, device {device}")

    stages: dict[str, Any] = {}
    start = time.perf_counter()
    images = [image for _, image in footage.frames(0, last)]
    stages["decode footage"] = _rate(count, time.perf_counter() - start)

    # MediaPipe landmarks, once: what the landmark fit and the encoder start from.
    clip = ClipFrames(footage, 0, last)
    detections, seconds = _timed(lambda: detect_landmarks(clip, "mediapipe", device, sink), device)
    detect_s = seconds - clip.decode_s
    stages["mediapipe landmarks (detect)"] = _rate(count, detect_s)

    baselines: dict[str, Any] = {}
    for name in ("landmark-fit", "mediapipe-blendshapes"):
        entry = tracker_entry(name)
        frames = ClipFrames(footage, 0, last) if entry.needs_frames else None
        head = resolve_head("default")
        tracker_input = TrackerInput(
            head=head, frame_count=count, width=info.width, height=info.height, fps=info.fps,
            device=device, sink=sink, detections=detections if entry.needs_detections else None,
            frames=frames, data_files=entry.resolve_data_files())
        output, seconds = _timed(lambda e=entry, i=tracker_input: e.create().track(i), device)
        seconds -= frames.decode_s if frames is not None else 0.0
        baselines[name] = {**_rate(count, seconds), "frames_tracked": int(output.tracked.sum()),
                           "includes": "its own MediaPipe detection" if not entry.needs_detections
                           else "not the detection (shared, above)"}

    # The encoder tracker, stage by stage (backend/trackers/encoder.py's work).
    intrinsics = centred_intrinsics(float(max(info.width, info.height)), info.width, info.height)
    centre, height = face_centre_and_height(model_head)
    centre_t = torch.as_tensor(centre, dtype=torch.float32, device=device)

    confidence = detections.confidence * model_head.landmark_mask[None]

    def crop_all() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        index, seen = [], []
        for i, image in enumerate(images):
            one = (crop_frame(image, detections.points[i], detections.confidence[i], intrinsics, size)
                   if detections.found[i] else None)
            if one is not None:
                index.append(i)
                seen.append(one)
        return (np.array(index, int), *(np.stack([s[f] for s in seen]) if seen else np.zeros(0)
                                        for f in range(3)))

    (tracked_index, crops, points, cameras), crop_s = _timed(crop_all, device)
    tracked = len(tracked_index)
    if tracked == 0:
        raise BadInput(f"no face found in frames 0-{last} of {info.path}: nothing to encode")
    crops_t = torch.as_tensor(crops, device=device)
    points_t = torch.as_tensor(points, device=device)
    confidence_t = torch.as_tensor(confidence[tracked_index], dtype=torch.float32, device=device)
    cameras_t = torch.as_tensor(cameras, device=device)

    def encode(batch: int, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        zs, poses = [], []
        with torch.no_grad():
            for s in range(0, tracked if limit is None else min(limit, tracked), batch):
                out = encoder(crops_t[s:s + batch].permute(0, 3, 1, 2).float() / 255,
                              points_t[s:s + batch], confidence_t[s:s + batch])
                zs.append(out.z)
                poses.append(pose_from_crop(out.rotation, out.uv, out.scale, cameras_t[s:s + batch],
                                            size, centre_t, height))
        return torch.cat(zs), torch.cat(poses)

    def decode_vertices(z: torch.Tensor, batch: int) -> np.ndarray:
        with torch.no_grad():
            return np.concatenate([dam.decode_vertices(z[s:s + batch]).cpu().numpy()
                                   for s in range(0, len(z), batch)])

    encoder_rows: dict[str, Any] = {"crop": {**_rate(tracked, crop_s), "batch": "per frame"}}
    per_batch: dict[str, Any] = {}
    vertices = poses = z = None
    texture_count = min(config.texture_frames, tracked)
    runs = [(n, batch) for n in thread_counts for batch in batches]
    for threads_used, batch in runs:
        torch.set_num_threads(threads_used)
        encode(batch, limit=batch)  # warm-up (one batch): first-call allocations are no rate
        (z, poses), encode_s = _timed(lambda b=batch: encode(b), device)
        decode_vertices(z[:batch], batch)
        vertices, decode_s = _timed(lambda b=batch, zz=z: decode_vertices(zz, b), device)
        row = {"encode": _rate(tracked, encode_s), "decode vertices": _rate(tracked, decode_s)}
        if texture_count:
            views = decoded_view_directions(poses[:texture_count].cpu().numpy(), model_head)
            latent = z[:texture_count].cpu().numpy()
            decode_textures(dam, latent[:batch], views[:batch], device)
            _, texture_s = _timed(lambda b=batch, lat=latent, v=views: [
                decode_textures(dam, lat[s:s + b], v[s:s + b], device)
                for s in range(0, texture_count, b)], device)
            row["decoded textures"] = {**_rate(texture_count, texture_s), "frames": texture_count}
        row["vertices and pose (crop + encode + decode)"] = _rate(tracked, crop_s + encode_s + decode_s)
        per_batch[f"batch {batch}, {threads_used} thread{'s' * (threads_used > 1)}"] = row
    torch.set_num_threads(default_threads)
    assert vertices is not None
    all_vertices = np.zeros((count, *vertices.shape[1:]), np.float32)
    all_vertices[tracked_index] = vertices
    is_tracked = np.zeros(count, bool)
    is_tracked[tracked_index] = True
    solve, solve_s = _timed(lambda: solve_arkit_weights(model_head, all_vertices, is_tracked), device)
    encoder_rows["ARKit solve"] = {**_rate(tracked, solve_s), "batch": "per frame",
                                   "vertex_mm": round(solve.vertex_mm, 4)}
    for row in per_batch.values():
        core = row["vertices and pose (crop + encode + decode)"]["seconds"]
        row["+ ARKit solve"] = _rate(tracked, core + solve_s)
        row["+ ARKit solve + MediaPipe landmarks"] = _rate(tracked, core + solve_s + detect_s)
    encoder_rows.update(per_batch)

    threads = {"torch": default_threads, "encoder_runs": thread_counts,
               "torch_interop": torch.get_num_interop_threads(), "opencv": cv2.getNumThreads(),
               "cpu_count": os.cpu_count()}
    peak = {"process_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if device.startswith("cuda"):
        peak["cuda_allocated_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    best_run, best = max(((name, row["vertices and pose (crop + encode + decode)"]["frames_per_s"] or 0.0)
                          for name, row in per_batch.items()), key=lambda item: item[1])
    report = {
        "benchmark": "encoder",
        "footage": str(footage_path),
        "size": [info.width, info.height],
        "frames": count,
        "frames_with_a_face": tracked,
        "device": device,
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "threads": threads,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "model": str(folder),
        "encoder_weights": encoder_weights,
        "crop_size": size,
        "stages": stages,
        "baselines": baselines,
        "encoder": encoder_rows,
        "goal_vertices_and_pose_frames_per_s": GOAL_FRAMES_PER_S,
        "goal_met": best >= GOAL_FRAMES_PER_S,
        "best_vertices_and_pose": {"run": best_run, "frames_per_s": best},
        "peak_memory": peak,
        "notes": NOTES,
    }
    sink.log(format_report(report))
    return report


def format_report(report: dict) -> str:
    """The report as a table: one row per stage or tracker, frames/s per batch size."""
    lines = [f"{report['frames']} frames of {Path(report['footage']).name} "
             f"({report['size'][0]}x{report['size'][1]}) on {report['device']}, "
             f"{report['threads']['torch']} torch threads, load {report['load_average_before'][0]}",
             f"{'stage':<70} {'frames/s':>9}"]
    for name, row in {**report["stages"], **{f"{k} tracker": v for k, v in report["baselines"].items()}
                      }.items():
        lines.append(f"{name:<70} {row['frames_per_s'] or 0:>9.1f}")
    for name, row in report["encoder"].items():
        if "frames_per_s" in row:
            lines.append(f"{'encoder: ' + name:<70} {row['frames_per_s'] or 0:>9.1f}")
            continue
        for stage, value in row.items():
            lines.append(f"{f'encoder {name}: {stage}':<70} {value['frames_per_s'] or 0:>9.1f}")
    goal = report["goal_vertices_and_pose_frames_per_s"]
    best = report["best_vertices_and_pose"]
    lines.append(f"goal {goal:g} frames/s for vertices and pose: "
                 f"{'met' if report['goal_met'] else 'not met'} (best {best['frames_per_s']:.1f} at "
                 f"{best['run']}); peak memory "
                 f"{report['peak_memory']['process_rss_mib']:.0f} MiB")
    return "\n".join(lines)
