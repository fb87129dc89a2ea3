"""`bench import`: how long Blender takes to import a clip's results in each geometry mode, the
.blend it saves, and how fast the scene then plays, on a synthetic head of a given size
(backend/bench/synthetic_performance.py), beside the mode the panel recommends."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..blender_program import blender_program_command, build_extension
from ..config_parser import option, report_option
from ..data_location import REPO_ROOT
from ..events import EventSink
from ..formats.errors import BackendError, BadInput
from .synthetic_performance import save_synthetic_head, write_synthetic_results

MODES = ("arkit", "shape-keys", "point-cache", "compact")
SHAPE_KEY_BUDGET_VERTEX_FRAMES = 2_500_000  # blender_addon/geometry_plan.py: past it, a point cache


@dataclass(frozen=True)
class BenchImportConfig:
    frames: str = option("1000,5000", "clip lengths to import, comma-separated")
    vertices: int = option(10_000, "vertices of the synthetic head")
    modes: str = option(",".join(MODES), "geometry modes, comma-separated")
    json: Path | None = report_option()
    device: str = "cpu"

    def __post_init__(self) -> None:
        for mode in self.mode_list():
            if mode not in MODES:
                raise BadInput(f"--modes: unknown mode {mode!r}; use {', '.join(MODES)}")
        if not self.frame_counts() or min(self.frame_counts()) < 1 or self.vertices < 16:
            raise BadInput("--frames needs clip lengths >= 1 and --vertices at least 16")

    def mode_list(self) -> list[str]:
        return [m.strip() for m in self.modes.split(",") if m.strip()]

    def frame_counts(self) -> list[int]:
        try:
            return [int(f) for f in self.frames.split(",") if f.strip()]
        except ValueError as exc:
            raise BadInput(f"--frames {self.frames!r}: comma-separated whole numbers") from exc


def recommended_mode(frames: int, vertices: int) -> str:
    """What the panel recommends (blender_addon/geometry_plan.recommended_mode, which Blender's
    side owns; the rule is repeated here because the backend cannot import the add-on's
    package)."""
    return "shape-keys" if frames * vertices <= SHAPE_KEY_BUDGET_VERTEX_FRAMES else "point-cache"


def bench_import(config: BenchImportConfig, sink: EventSink) -> dict:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        head_path = work / "head.npz"
        head = save_synthetic_head(head_path, config.vertices)
        zip_path = build_extension(work / "dist")
        for frames in config.frame_counts():
            sink.log(f"writing {frames} frames of a {len(head.vertices)}-vertex head")
            source = write_synthetic_results(work / f"results-{frames}", head, frames)
            for mode in config.mode_list():
                results = work / f"results-{frames}-{mode}"
                shutil.copytree(source, results)
                sink.log(f"importing {frames} frames as {mode}")
                row = _import_in_blender(zip_path, head_path, results, mode, work)
                row |= {"frames": frames, "recommended": mode == recommended_mode(frames, len(head.vertices))}
                sink.log(f"  {row['import_s']} s, .blend {row['blend_mib']} MiB (+{row['side_files_mib']} "
                         f"MiB beside it), playback {row['playback_fps']} frames/s")
                rows.append(row)
                shutil.rmtree(results)
            shutil.rmtree(source)
    return {"benchmark": "import", "vertices": len(head.vertices), "rows": rows}


def _import_in_blender(zip_path: Path, head_path: Path, results: Path, mode: str,
                       work: Path) -> dict:
    report = work / "import.json"
    done = subprocess.run(blender_program_command("import_benchmark", [
        "--zip", str(zip_path), "--head", str(head_path), "--results", str(results), "--mode", mode,
        "--json", str(report), "--backend-python", sys.executable]), cwd=REPO_ROOT,
        capture_output=True, text=True, errors="replace")
    if done.returncode != 0:
        raise BackendError(f"the Blender import benchmark failed ({mode}): {done.stderr[-2000:]}")
    return json.loads(report.read_text())
