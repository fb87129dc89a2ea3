"""`bench import`: how long Blender takes to import a whole clip's results (Import Results)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..blender_program import blender_program_command, build_extension
from ..config_parser import option, report_option
from ..data_location import REPO_ROOT, data_file
from ..events import EventSink
from ..formats.errors import BackendError
from ..track import TrackSettings, run_track

DEFAULT_CLIP = "videos/lp_driving_d3.mp4"


@dataclass(frozen=True)
class BenchImportConfig:
    footage: Path | None = option(None, f"clip to track and import (default: {DEFAULT_CLIP} in the data)")
    json: Path | None = report_option()
    device: str = "cpu"


def bench_import(config: BenchImportConfig, sink: EventSink) -> dict:
    footage = config.footage or data_file(DEFAULT_CLIP)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        results = run_track(TrackSettings(footage=footage, out=work / "results",
                                          device=config.device), sink)
        frames = json.loads((results / "result.json").read_text())["metrics"]["frames_total"]
        zip_path = build_extension(work / "dist")
        sink.log("importing into Blender")
        done = subprocess.run(blender_program_command("import_benchmark", [
            "--zip", str(zip_path), "--results", str(results), "--json", str(work / "import.json"),
            "--backend-python", sys.executable]), cwd=REPO_ROOT, capture_output=True, text=True,
            errors="replace")
        if done.returncode != 0:
            raise BackendError(f"the Blender import benchmark failed: {done.stderr[-2000:]}")
        blender = json.loads((work / "import.json").read_text())
    report = {"benchmark": "import", "footage": str(footage), "frames": frames, **blender,
              "import_frames_per_s": round(frames / blender["import_s"], 1)}
    sink.log(f"Import Results of {frames} frames: {blender['import_s']:.2f} s "
             f"({report['import_frames_per_s']} frames/s), .blend save {blender['save_s']:.2f} s, "
             f"{blender['blend_mib']} MiB")
    return report
