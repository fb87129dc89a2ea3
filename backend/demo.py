"""The main job (`make demo`): render a performance of the default head in Blender with
Cycles, track it with the default tracker and with the landmark fit, score both against the
ground truth side by side, and write a preview movie and a .blend (through the extension's
Track Footage, which runs the default tracker)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .blender_program import blender_program_command, build_extension, run_blender_program
from .data_location import REPO_ROOT
from .evaluation.performances import procedural_performance
from .evaluation.truth_metrics import TruthErrors, truth_errors
from .events import EventSink
from .footage import Footage
from .formats.clip_files import load_truth
from .formats.errors import BackendError
from .formats.head_file import HeadAsset, save_head
from .formats.results_dir import read_results
from .heads.default_head import default_head
from .movie_writer import write_movie
from .preview import write_preview
from .track import TrackSettings, run_track
from .trackers.registry import DEFAULT_TRACKER

DEMO_FPS = 24.0
BASELINE_TRACKER = "landmark-fit"  # printed beside the default tracker


def render_clip(head: HeadAsset, head_path: Path, clip_dir: Path, frames: int,
                sink: EventSink) -> None:
    """Render a procedural performance of `head` in the cluttered room (Blender, Cycles)."""
    performance = procedural_performance(tuple(head.blendshape_names), frames, DEMO_FPS, seed=0)
    performance_path = performance.save(clip_dir.parent / "demo_performance.npz")
    run_blender_program("render_clip", ["--head", str(head_path), "--performance",
                                        str(performance_path), "--out", str(clip_dir), "--overwrite"],
                        "render", sink)


def build_demo_blend(clip_dir: Path, fps: float, out: Path, sink: EventSink) -> Path:
    """Encode the clip as a movie and build out/demo.blend through the extension's operators."""
    footage = Footage(clip_dir / "frames", fps=fps)
    frames = (image for _, image in footage.frames(0, footage.info.frame_count - 1))
    movie = write_movie(frames, out / "demo_clip.mp4", fps)
    sink.log("building the Blender scene through the extension (Add Head, Track Footage)")
    zip_path = build_extension(out / "dist")
    blend = out / "demo.blend"
    done = subprocess.run(blender_program_command("demo_scene", [
        "--zip", str(zip_path), "--clip", str(movie), "--out", str(blend),
        "--renders", str(out / "demo_renders"), "--backend-python", sys.executable]),
        cwd=REPO_ROOT, capture_output=True, text=True,
        errors="replace")
    if done.returncode != 0:
        raise BackendError(f"building {blend} failed: {done.stderr.strip()[-2000:]}")
    return blend


def run_demo(out: Path, frames: int, device: str, sink: EventSink) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    head = default_head()
    head_path = out / "demo_head.npz"
    save_head(head, head_path)
    clip_dir = out / "demo_clip"
    render_clip(head, head_path, clip_dir, frames, sink)
    clip = json.loads((clip_dir / "clip.json").read_text())
    truth = load_truth(clip_dir).as_arrays()
    errors: dict[str, TruthErrors] = {}
    metrics: dict[str, dict] = {}
    for tracker in (DEFAULT_TRACKER, BASELINE_TRACKER):
        results_dir = out / f"demo_results_{tracker}"
        run_track(TrackSettings(footage=clip_dir / "frames", out=results_dir, device=device, overwrite=True,
                                fps=float(clip["fps"]), head=str(head_path), tracker=tracker), sink)
        results = read_results(results_dir)
        errors[tracker] = truth_errors(results.tracking, truth, head)
        metrics[tracker] = results.document["metrics"]
        if tracker == DEFAULT_TRACKER:
            preview = write_preview(clip_dir / "frames", results.tracking, results.mesh["faces"],
                                    out / "demo_preview.mp4", float(clip["fps"]))
    blend = build_demo_blend(clip_dir, float(clip["fps"]), out, sink)
    baseline_dir = out / f"demo_results_{BASELINE_TRACKER}"
    report = {"clip": str(clip_dir), "tracker": DEFAULT_TRACKER,
              "results": str(out / f"demo_results_{DEFAULT_TRACKER}"), "preview": str(preview),
              "blend": str(blend), "errors": errors[DEFAULT_TRACKER].as_dict(),
              "tracker_metrics": metrics[DEFAULT_TRACKER],
              "baseline": {"tracker": BASELINE_TRACKER, "results": str(baseline_dir),
                           "errors": errors[BASELINE_TRACKER].as_dict()}}
    (out / "demo_report.json").write_text(json.dumps(report, indent=1) + "\n")
    ours, theirs = errors[DEFAULT_TRACKER], errors[BASELINE_TRACKER]
    rows = [("mean vertex error", "mm", "vertex_mm", "face region"),
            ("mean landmark error", "px", "landmark_px", "against the true landmarks"),
            ("mean rotation error", "deg", "rotation_deg", "head rotation")]
    lines = [f"demo: {ours.frames} frames of the default head (Cycles render) tracked",
             f"  {'':<21}{DEFAULT_TRACKER + ' (default)':>20}{BASELINE_TRACKER:>16}"]
    for label, unit, field, what in rows:
        mean, p95 = f"{field}_mean", f"{field}_p95"
        a, b = getattr(ours, mean), getattr(theirs, mean)
        lines.append(f"  {label:<21}{a:>16.2f} {unit:<3}{b:>12.2f} {unit:<3}"
                     f" ({what}; p95 {getattr(ours, p95):.2f} / {getattr(theirs, p95):.2f} {unit})")
    lines += [f"  preview             {preview}", f"  Blender scene       {blend}",
              f"  Cycles renders      {out / 'demo_renders'} (F12 of three frames)"]
    print("\n".join(lines), file=sys.stderr)
    return preview
