"""`bench capture`: what one lab-capture view of a head costs in each renderer a capture could
use (the measurement behind the digital double's choice, docs/personal-model.md): the backend's
own (`LabRenderer`, what `personalize` uses), and Blender's EEVEE and Cycles, headless on this
machine, at the same size from the same dome of cameras around the same head. Rendering only:
the unwrap into UV space comes after any of them. The report gives seconds per view and what
the personal capture (400 expressions x 8 views) would take in each.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..blender_program import run_blender_program
from ..config_parser import option, report_option
from ..events import EventSink
from ..formats.errors import BadInput
from ..formats.head_file import save_head
from ..lab.capture import CaptureConfig, LabRenderer, capture_intrinsics, dome_poses, face_centre_and_height

PERSONAL_CAPTURE_VIEWS = 400 * 8  # personalize's default --expressions x its 8 cameras


@dataclass(frozen=True)
class BenchCaptureConfig:
    head: str = option("default", "'default', 'ict', 'ict-actor' or a head.npz path")
    views: int = option(8, "views timed per renderer (after one warm-up view)")
    size: int = option(256, "image size, pixels a side (the capture's)")
    samples: int = option(12, "Cycles samples per pixel (the ground-truth clips' default)")
    engines: str = option("eevee,cycles", "Blender engines to time, comma-separated")
    json: Path | None = report_option()
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.views < 1 or self.size < 16 or self.samples < 1:
            raise BadInput(f"--views {self.views} --size {self.size} --samples {self.samples}: "
                           "at least 1 view, 16 pixels, 1 sample")
        unknown = set(self.engine_list()) - {"eevee", "cycles"}
        if unknown:
            raise BadInput(f"--engines: unknown {', '.join(sorted(unknown))}; use eevee, cycles")

    def engine_list(self) -> list[str]:
        return [e.strip() for e in self.engines.split(",") if e.strip()]


def bench_capture(config: BenchCaptureConfig, sink: EventSink) -> dict:
    from ..heads.default_head import resolve_head

    head = resolve_head(config.head)
    if head.albedo is None:
        raise BadInput(f"--head {config.head} has no albedo: a capture renders one")
    capture = CaptureConfig(expressions=1, cameras=config.views, image_size=config.size)
    poses = dome_poses(head, capture, config.views, np.random.default_rng(0))
    renderer = LabRenderer(head, capture, config.device)
    rest = renderer.vertices(torch.zeros(config.views, len(head.blendshapes), device=renderer.device))
    pose_tensor = torch.as_tensor(poses, device=renderer.device)
    renderer.render(rest[:1], pose_tensor[:1])  # warm-up: kernels compiled, memory allocated
    start = time.perf_counter()
    renderer.render(rest, pose_tensor)
    seconds = {"backend": (time.perf_counter() - start) / config.views}

    if config.engine_list():
        # Camera centres in head space (poses are head -> OpenCV camera: centre = -R^T t).
        centres = -np.einsum("cji,cj->ci", poses[:, :3, :3], poses[:, :3, 3])
        focal = capture_intrinsics(head, capture)[0, 0]
        fov = 2 * math.degrees(math.atan(config.size / 2 / focal))
        target, _ = face_centre_and_height(head)
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            save_head(head, work / "head.npz")
            np.save(work / "cameras.npy", centres)
            run_blender_program("capture_render_benchmark", [
                "--head", str(work / "head.npz"), "--cameras", str(work / "cameras.npy"),
                # "--name=value": a value starting with "-" would otherwise read as an option
                f"--target={','.join(map(str, target))}", "--fov-deg", str(fov),
                f"--light={','.join(map(str, capture.light_dir_head))}", "--size", str(config.size),
                "--samples", str(config.samples), "--engines", ",".join(config.engine_list()),
                "--json", str(work / "blender.json")], "bench capture", sink)
            blender = json.loads((work / "blender.json").read_text())
        seconds |= {name: row["seconds_per_view"] for name, row in blender["engines"].items()}
    report = {"benchmark": "capture", "head": config.head, "vertices": head.num_vertices,
              "size": config.size, "views": config.views, "cycles_samples": config.samples,
              "seconds_per_view": {k: round(v, 4) for k, v in seconds.items()},
              "personal_capture_minutes": {k: round(v * PERSONAL_CAPTURE_VIEWS / 60, 1)
                                           for k, v in seconds.items()},
              "threads": torch.get_num_threads()}
    for name, value in seconds.items():
        sink.log(f"{name}: {value:.4f} s per {config.size}x{config.size} view; "
                 f"{report['personal_capture_minutes'][name]} min for {PERSONAL_CAPTURE_VIEWS} views")
    return report
