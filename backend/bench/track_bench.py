"""`bench track`: frames per second of each stage of `track` (the default tracker unless
--tracker says otherwise) on real footage, and peak memory."""

from __future__ import annotations

import json
import platform
import resource
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..config_parser import option, report_option
from ..data_location import data_file
from ..events import EventSink
from ..track import TrackSettings, run_track
from ..trackers.registry import DEFAULT_TRACKER, tracker_names

DEFAULT_CLIP = "videos/lp_driving_d3.mp4"


@dataclass(frozen=True)
class BenchTrackConfig:
    footage: Path | None = option(None, f"clip to benchmark (default: {DEFAULT_CLIP} in the data)")
    tracker: str = option(DEFAULT_TRACKER, "tracker to time", choices=tracker_names())
    json: Path | None = report_option()
    device: str = "cpu"


def bench_track(config: BenchTrackConfig, sink: EventSink) -> dict:
    import torch

    footage = config.footage or data_file(DEFAULT_CLIP)
    device = config.device
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        out = run_track(TrackSettings(footage=footage, out=Path(tmp) / "r", device=device,
                                      tracker=config.tracker), sink)
        wall = time.perf_counter() - start
        document = json.loads((out / "result.json").read_text())
    frames = document["metrics"]["frames_total"]
    timings = document["timings_s"]
    stages = {stage: {"seconds": round(seconds, 3),
                      "frames_per_s": round(frames / seconds, 1) if seconds > 0 else None}
              for stage, seconds in timings.items()}
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = {
        "benchmark": "track",
        "footage": str(footage),
        "tracker": config.tracker,
        "frames": frames,
        "device": device,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "stages": stages,
        "total_seconds": round(wall, 2),
        "total_frames_per_s": round(frames / wall, 2),
        "peak_memory_mib": round(peak_mib, 1),
        "landmark_reprojection_px": document["metrics"]["landmark_reprojection_px"],
    }
    lines = [f"{'stage':<8} {'seconds':>8} {'frames/s':>9}"]
    lines += [f"{s:<8} {v['seconds']:>8.2f} {v['frames_per_s'] or 0:>9.1f}" for s, v in stages.items()]
    lines.append(f"total {wall:.1f} s for {frames} frames; peak memory {peak_mib:.0f} MiB")
    sink.log("\n".join(lines))
    return report
