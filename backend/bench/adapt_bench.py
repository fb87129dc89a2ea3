"""`bench adapt`: what adapting to the clip costs, beside the landmark fit in the same run.

On the first frames of one real clip, at several clip lengths: `track --tracker landmark-fit`
and `track --tracker adapted` (and, at the middle length, the adaptation at other UV atlas
sizes, `--adapt-texels`). Per run: wall time, the adaptation's own seconds (result.json
`adaptation_s`) and the refinement's after it (`refine_s`) per frame of clip, the crop and
encode stages, peak memory, and the ratio of
the adapted run's wall time to the landmark fit's at the same length. Every run is its own
`python -m backend track` process (its peak memory alone) with an empty stage cache, so no run
reuses another's detections, crops or encoding. Memory on a 5,000-frame clip: `bench soak
--tracker adapted`.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..adaptation.config import AdaptationConfig
from ..config_parser import option, report_option
from ..data_location import data_file
from ..events import EventSink
from ..footage import Footage
from ..formats.errors import BadInput
from .measured_run import run_measured

DEFAULT_CLIP = "videos/lp_driving_d3.mp4"
BASELINE = "landmark-fit"


def _integers(text: str, flag: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise BadInput(f"{flag} {text!r}: give comma-separated whole numbers, e.g. 50,100,200") from None
    if not values or min(values) < 2:
        raise BadInput(f"{flag} {text!r}: every value must be at least 2")
    return values


@dataclass(frozen=True)
class BenchAdaptConfig:
    footage: Path | None = option(None, f"clip to benchmark (default: {DEFAULT_CLIP} in the data)")
    lengths: str = option("50,100,200", "clip lengths in frames (comma-separated), from frame 0")
    texels: str = option("32,128", "other --adapt-texels to time at the middle length (64 is the default)")
    passes: float = option(AdaptationConfig.passes, "--adapt-passes of every adapted run")
    json: Path | None = report_option()
    device: str = "cpu"

    def __post_init__(self) -> None:
        _integers(self.lengths, "--lengths")
        for texels in _integers(self.texels, "--texels"):
            AdaptationConfig(texels=texels)  # refuses a size the adaptation refuses
        AdaptationConfig(passes=self.passes)


def bench_adapt(config: BenchAdaptConfig, sink: EventSink) -> dict:
    footage = config.footage or data_file(DEFAULT_CLIP)
    lengths = sorted(_integers(config.lengths, "--lengths"))
    available = Footage(footage).info.frame_count
    if lengths[-1] > available:
        raise BadInput(f"--lengths {config.lengths}: {footage} has only {available} frames")
    middle = lengths[len(lengths) // 2]
    default_texels = AdaptationConfig.texels
    runs = [(BASELINE, n, None) for n in lengths] + [("adapted", n, default_texels) for n in lengths]
    runs += [("adapted", middle, t) for t in _integers(config.texels, "--texels") if t != default_texels]
    report: dict = {"benchmark": "adapt", "footage": str(footage), "device": config.device,
                    "machine": platform.machine(), "cpus": os.cpu_count(), "passes": config.passes,
                    "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cache = work / "cache"
        # A short run of each tracker first, so the default head's, the model head's and Warp's
        # caches are built before anything is timed.
        warm = [(BASELINE, 2, None), ("adapted", 2, default_texels)]
        for index, (tracker, frames, texels) in enumerate([*warm, *runs]):
            shutil.rmtree(cache / "stages", ignore_errors=True)
            out = work / f"run{index}"
            command = [sys.executable, "-m", "backend", "track", str(footage), "--out", str(out),
                       "--frames", f"0-{frames - 1}", "--tracker", tracker, "--texture-size", "0",
                       "--device", config.device]
            if texels is not None:
                command += ["--adapt-passes", str(config.passes), "--adapt-texels", str(texels)]
            what = f"{tracker} on {frames} frames" + (f", {texels} texels" if texels else "")
            wall, peak, _ = run_measured(command, sink, what, {**os.environ, "FACEADAPT_CACHE": str(cache)})
            if index < len(warm):
                continue
            document = json.loads((out / "result.json").read_text())
            timings, metrics = document["timings_s"], document["metrics"]
            run = {"tracker": tracker, "frames": frames, "texels": texels, "wall_s": round(wall, 2),
                   "s_per_frame": round(wall / frames, 4), "peak_mib": round(peak, 1), "stages_s": timings,
                   "frames_tracked": metrics["frames_tracked"]}
            if texels is not None:
                run["adaptation_s"] = metrics["adaptation_s"]
                run["adaptation_steps"] = metrics["adaptation_steps"]
                run["adaptation_s_per_frame"] = round(metrics["adaptation_s"] / frames, 4)
                run["refine_s"] = metrics.get("refine_s", 0.0)
                run["refine_steps"] = metrics.get("refine_steps", 0)
                run["refine_s_per_frame"] = round(run["refine_s"] / frames, 4)
            report["runs"].append(run)
    baseline = {r["frames"]: r for r in report["runs"] if r["tracker"] == BASELINE}
    for run in report["runs"]:
        if run["tracker"] != BASELINE:
            run["wall_ratio_to_landmark_fit"] = round(run["wall_s"] / baseline[run["frames"]]["wall_s"], 2)
    sink.log(_table(report["runs"]))
    return report


def _table(runs: list[dict]) -> str:
    lines = [f"{'tracker':<13}{'frames':>7}{'texels':>7}{'wall s':>8}{'s/frame':>9}{'adapt s/frame':>14}"
             f"{'refine s/frame':>15}{'x landmark fit':>15}{'peak MiB':>9}"]
    for r in runs:
        lines.append(f"{r['tracker']:<13}{r['frames']:>7}{r['texels'] or '':>7}{r['wall_s']:>8.1f}"
                     f"{r['s_per_frame']:>9.3f}{r.get('adaptation_s_per_frame', ''):>14}"
                     f"{r.get('refine_s_per_frame', ''):>15}"
                     f"{r.get('wall_ratio_to_landmark_fit', ''):>15}{r['peak_mib']:>9.0f}")
    return "\n".join(lines)
