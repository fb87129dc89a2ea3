"""`bench batch`: N shots tracked three ways on this machine, each a measured process with an empty
cache: a loop of `python -m backend track` processes (what a TD would script without FaceAdapt's
batch: the baseline), `batch --engine local` and `batch --engine ray` (a local cluster started
by the batch). Per way: wall time, seconds per shot, and the overhead per shot, the seconds a shot
costs beyond its tracking work (the sum of its result.json timings: the same work every way,
dearer where it runs cold or beside another shot):

    overhead per shot = (wall time x shots run at once - sum of the shots' tracking seconds) / shots

so the loop's is a process start with its imports, the local batch's its checks and report, and
Ray's the cluster's start, its workers' imports and the task traffic.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..config_parser import option, report_option
from ..data_location import data_dir
from ..events import EventSink
from ..footage import Footage
from ..formats.errors import BadInput
from ..trackers.registry import tracker_names
from .measured_run import run_measured

CLIPS = ("lp_driving_d0", "lp_driving_d3", "lp_driving_d9", "lp_driving_d10", "lp_driving_d11",
         "lp_driving_d12", "lp_driving_d14", "lp_driving_d18")


@dataclass(frozen=True)
class BenchBatchConfig:
    shots: int = option(4, f"shots, each the first frames of another real clip with that many (at most "
                           f"{len(CLIPS)})")
    frames: int = option(10, "frames per shot")
    tracker: str = option("landmark-fit", "tracker of every shot", choices=tracker_names())
    cpus_per_shot: float = option(1.0, "CPUs Ray reserves per shot")
    json: Path | None = report_option()

    def __post_init__(self) -> None:
        if not 1 <= self.shots <= len(CLIPS):
            raise BadInput(f"--shots {self.shots}: use 1 to {len(CLIPS)}")
        if self.frames < 2:
            raise BadInput(f"--frames {self.frames}: use 2 or more")


def _timings(results: Path) -> dict[str, float]:
    """The shot's own tracking work, stage by stage: its result.json timings."""
    return json.loads((results / "result.json").read_text())["timings_s"]


def bench_batch(config: BenchBatchConfig, sink: EventSink) -> dict:
    long_enough = [path for path in (data_dir() / "videos" / f"{clip}.mp4" for clip in CLIPS)
                   if Footage(path).info.frame_count >= config.frames]
    if len(long_enough) < config.shots:
        raise BadInput(f"--shots {config.shots} --frames {config.frames}: only {len(long_enough)} of the clips "
                       f"({', '.join(CLIPS)}) have that many frames")
    clips = long_enough[:config.shots]
    settings = ["--frames", f"0-{config.frames - 1}", "--tracker", config.tracker, "--texture-size", "0"]
    workers = max(1, int((os.cpu_count() or 1) // config.cpus_per_shot))
    report: dict = {"benchmark": "batch", "machine": platform.machine(), "cpus": os.cpu_count(),
                    "shots": config.shots, "frames_per_shot": config.frames, "tracker": config.tracker,
                    "cpus_per_shot": config.cpus_per_shot, "ways": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shot_file = work / "shots.toml"
        shot_file.write_text(f'[defaults]\ntracker = "{config.tracker}"\ntexture_size = 0\n'
                             f'frames = "0-{config.frames - 1}"\ndevice = "cpu"\n'
                             + "".join(f'\n[[shot]]\nfootage = "{clip}"\n' for clip in clips))
        # One track first, so the default head's and Warp's caches (built once per machine) are timed by no way.
        warm = work / "warm"
        run_measured([sys.executable, "-m", "backend", "track", str(clips[0]), "--out", str(warm / "out"),
                      *settings], sink, "warm-up", {**os.environ, "FACEADAPT_CACHE": str(warm / "cache")})
        ways = {"track loop": (1, None), "batch local": (1, ["--engine", "local"]),
                "batch ray": (workers, ["--engine", "ray", "--cpus-per-shot", f"{config.cpus_per_shot:g}"])}
        for name, (at_once, batch_options) in ways.items():
            folder = work / name.replace(" ", "_")
            env = {**os.environ, "FACEADAPT_CACHE": str(folder / "cache")}  # no way reuses another's detections
            _copy_head_cache(warm / "cache", folder / "cache")
            if batch_options is None:
                wall = 0.0
                for clip in clips:
                    out = folder / clip.stem
                    command = [sys.executable, "-m", "backend", "track", str(clip), "--out", str(out),
                               *settings]
                    wall += run_measured(command, sink, f"track {clip.stem}", env)[0]
            else:
                wall = run_measured([sys.executable, "-m", "backend", "batch", str(shot_file), "--out",
                                     str(folder), *batch_options], sink, name, env)[0]
            stages: dict[str, float] = {}
            for clip in clips:
                for stage, seconds in _timings(folder / clip.stem).items():
                    stages[stage] = stages.get(stage, 0.0) + seconds
            tracking = sum(stages.values())
            report["ways"][name] = {
                "wall_s": round(wall, 2), "s_per_shot": round(wall / config.shots, 2), "shots_at_once": at_once,
                "tracking_s": round(tracking, 2),
                "overhead_per_shot_s": round((wall * min(at_once, config.shots) - tracking) / config.shots, 2),
                "stages_s": {stage: round(seconds, 2) for stage, seconds in stages.items()}}
    loop = report["ways"]["track loop"]["wall_s"]
    for way in report["ways"].values():
        way["speedup_over_track_loop"] = round(loop / way["wall_s"], 2)
    sink.log(_table(report))
    return report


def _copy_head_cache(source: Path, target: Path) -> None:
    """The warm-up's caches but its stages (detections, crops): built per machine, not per shot."""
    import shutil

    shutil.copytree(source, target, ignore=shutil.ignore_patterns("stages"), dirs_exist_ok=True)


def _table(report: dict) -> str:
    lines = [f"{report['shots']} shots x {report['frames_per_shot']} frames, {report['tracker']}, "
             f"{report['cpus']} CPUs",
             f"{'way':<13}{'wall s':>8}{'s/shot':>8}{'at once':>8}{'tracking s':>11}{'overhead/shot s':>16}"
             f"{'x loop':>8}"]
    for name, w in report["ways"].items():
        lines.append(f"{name:<13}{w['wall_s']:>8.1f}{w['s_per_shot']:>8.1f}{w['shots_at_once']:>8}"
                     f"{w['tracking_s']:>11.1f}{w['overhead_per_shot_s']:>16.1f}{w['speedup_over_track_loop']:>8.2f}")
    return "\n".join(lines)
