"""`bench soak`: a long clip (a real clip looped to 5,000 frames) tracked (the landmark fit
unless --tracker says otherwise) and imported into Blender, beside a 300-frame run of the same
footage: time and peak memory of each, and the memory that grows per frame beyond the output
arrays themselves.

Each run is its own process (`python -m backend track`, then the Blender-side import
benchmark), so each peak resident set size is that run's alone (bench/measured_run.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..blender_program import blender_program_command, build_extension
from ..config_parser import option, report_option
from ..dam.model_folder import DEFAULT_MODEL, HEAD
from ..data_location import data_file
from ..events import EventSink
from ..formats.errors import BackendError, BadInput
from ..formats.results_dir import TRACKING_NPZ
from ..trackers.registry import ADAPTATION_TRACKERS, tracker_names
from .measured_run import run_measured

# The soak imports the default tracker's results onto the default model's head, as per-frame
# shape keys: the heaviest mode, the one whose growth with clip length it watches.
SOAK_IMPORT_MODE = "shape-keys"
MODEL_HEAD = DEFAULT_MODEL / HEAD

DEFAULT_CLIP = "videos/lp_driving_d3.mp4"
SOAK_TRACKER = "landmark-fit"  # the pipeline's own cost, with the cheapest tracker


@dataclass(frozen=True)
class BenchSoakConfig:
    frames: int = option(5000, "length of the long run (the footage looped)")
    short_frames: int = option(300, "length of the reference run")
    footage: Path | None = option(None, f"clip to loop (default: {DEFAULT_CLIP} in the data)")
    texture_size: int = option(0, "projected textures in both runs (0: none)")
    tracker: str = option(SOAK_TRACKER, "tracker of both runs", choices=tracker_names())
    adapt_passes: float = option(1.0, "--adapt-passes of an adaptation tracker (its working memory "
                                      "does not depend on it; its time does)")
    no_import: bool = option(False, "skip the Blender import runs")
    json: Path | None = report_option()
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not 1 <= self.short_frames < self.frames:
            raise BadInput(f"--short-frames {self.short_frames} must be between 1 and --frames "
                           f"{self.frames} - 1")


def _looped_clip(footage: Path, frames: int, out: Path) -> Path:
    """`footage` repeated until it has `frames` frames, re-encoded once (H.264)."""
    import imageio_ffmpeg

    done = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-stream_loop", "-1",
                           "-i", str(footage), "-frames:v", str(frames), "-an", "-c:v", "libx264",
                           "-crf", "18", "-pix_fmt", "yuv420p", "-y", str(out)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise BackendError(f"looping {footage} failed: {done.stderr[-2000:]}")
    return out


def bench_soak(config: BenchSoakConfig, sink: EventSink) -> dict:
    footage = config.footage or data_file(DEFAULT_CLIP)
    report: dict = {"benchmark": "soak", "footage": str(footage), "tracker": config.tracker,
                    "texture_size": config.texture_size, "device": config.device, "runs": {}}
    tracker_options = ["--tracker", config.tracker]
    if config.tracker in ADAPTATION_TRACKERS:
        tracker_options += ["--adapt-passes", str(config.adapt_passes)]
        report["adapt_passes"] = config.adapt_passes
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sink.log(f"looping {footage.name} to {config.frames} frames")
        clip = _looped_clip(footage, config.frames, work / "long.mp4")
        zip_path = None if config.no_import else build_extension(work / "dist")
        for frames in (config.short_frames, config.frames):
            results = work / f"results{frames}"
            wall, peak, _ = run_measured(
                [sys.executable, "-m", "backend", "track", str(clip), "--out", str(results),
                 "--frames", f"0-{frames - 1}", *tracker_options, "--texture-size",
                 str(config.texture_size), "--device", config.device], sink, f"track {frames} frames")
            document = json.loads((results / "result.json").read_text())
            with np.load(results / TRACKING_NPZ) as arrays:
                array_mib = sum(arrays[k].nbytes for k in arrays.files) / 2**20
            run = {"frames": frames, "track_s": round(wall, 1), "track_peak_mib": round(peak, 1),
                   "track_stages_s": document["timings_s"], "output_arrays_mib": round(array_mib, 1),
                   "frames_tracked": document["metrics"]["frames_tracked"]}
            if not config.no_import:
                import_json = work / f"import{frames}.json"
                import_wall, import_peak, _ = run_measured(blender_program_command("import_benchmark", [
                    "--zip", str(zip_path), "--results", str(results), "--json", str(import_json),
                    "--head", str(MODEL_HEAD), "--mode", SOAK_IMPORT_MODE,
                    "--backend-python", sys.executable]), sink, f"import {frames} frames into Blender")
                blender = json.loads(import_json.read_text())
                run.update({"import_s": blender["import_s"], "import_process_s": round(import_wall, 1),
                            "import_peak_mib": round(import_peak, 1), "blend_mib": blender["blend_mib"],
                            "save_s": blender["save_s"]})
            report["runs"][str(frames)] = run
    short, long = report["runs"][str(config.short_frames)], report["runs"][str(config.frames)]
    extra_frames = config.frames - config.short_frames
    growth = long["track_peak_mib"] - short["track_peak_mib"]
    arrays = long["output_arrays_mib"] - short["output_arrays_mib"]
    report["track_peak_growth_kib_per_frame"] = round(growth * 1024 / extra_frames, 1)
    report["output_arrays_kib_per_frame"] = round(arrays * 1024 / extra_frames, 1)
    report["track_memory_beyond_outputs_kib_per_frame"] = round((growth - arrays) * 1024 / extra_frames, 1)
    sink.log(f"{config.short_frames} -> {config.frames} frames: track {short['track_s']} -> "
             f"{long['track_s']} s, peak {short['track_peak_mib']} -> {long['track_peak_mib']} MiB "
             f"({report['track_memory_beyond_outputs_kib_per_frame']} KiB/frame beyond the "
             f"{report['output_arrays_kib_per_frame']} KiB/frame of output arrays)")
    if not config.no_import:
        report["import_peak_growth_kib_per_frame"] = round(
            (long["import_peak_mib"] - short["import_peak_mib"]) * 1024 / extra_frames, 1)
        sink.log(f"import {short['import_s']} -> {long['import_s']} s, peak {short['import_peak_mib']} -> "
                 f"{long['import_peak_mib']} MiB")
    return report
