"""The main job (`make demo`): render a performance of the default head in Blender with
Cycles, track it, score it against the ground truth, and write a preview movie."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .blender_program import blender_program_command, build_extension, run_blender_program
from .data_location import REPO_ROOT
from .evaluation.performances import procedural_performance
from .evaluation.truth_metrics import truth_errors
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

DEMO_FPS = 24.0


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
        "--backend-python", sys.executable]), cwd=REPO_ROOT, capture_output=True, text=True,
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
    results_dir = out / "demo_results"
    run_track(TrackSettings(footage=clip_dir / "frames", out=results_dir, device=device,
                            overwrite=True, fps=float(clip["fps"]), head=str(head_path)), sink)
    results = read_results(results_dir)
    document, tracking = results.document, results.tracking
    errors = truth_errors(tracking, load_truth(clip_dir).as_arrays(), head)
    preview = write_preview(clip_dir / "frames", tracking, results.mesh["faces"], out / "demo_preview.mp4",
                            float(clip["fps"]))
    blend = build_demo_blend(clip_dir, float(clip["fps"]), out, sink)
    report = {"clip": str(clip_dir), "results": str(results_dir), "preview": str(preview),
              "blend": str(blend), "errors": errors.as_dict(), "tracker_metrics": document["metrics"]}
    (out / "demo_report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"demo: {errors.frames} frames of the default head (Cycles render) tracked\n"
          f"  mean vertex error   {errors.vertex_mm_mean:.2f} mm (face region; p95 "
          f"{errors.vertex_mm_p95:.2f} mm)\n"
          f"  mean landmark error {errors.landmark_px_mean:.2f} px against the true landmarks "
          f"(p95 {errors.landmark_px_p95:.2f} px)\n"
          f"  preview             {preview}\n"
          f"  Blender scene       {blend}", file=sys.stderr)
    return preview
