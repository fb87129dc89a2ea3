"""`bench render`: the renderer's primitives per rasterizer candidate, side by side.

For the default head and (with FACEADAPT_DATA) the ICT FaceKit head, image and UV size 256 and
512, batch 1 and 8, torch on 2 threads: rasterize; interpolate + texture sample, forward and
backward; unwrap, forward and backward; each with every available candidate and its ratio to
the fastest. The per-topology UV atlas is timed separately. Peak RSS after each head.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ..config_parser import report_option
from ..events import EventSink
from ..formats.head_file import HeadAsset
from ..render.rasterize import (
    barycentrics,
    interpolate,
    interpolate_corners,
    project,
    rasterize,
)
from ..render.shading import render_textured
from ..render.texture import sample
from ..render.unwrap import make_atlas, unwrap
from .raster_candidates import candidates, using_coverage

SIZES = (256, 512)
BATCHES = (1, 8)
THREADS = 2
GOAL_MS = 100.0  # unwrap of one 512^2 ICT frame, forward and backward
PRODUCTION = "warp"


def _time_ms(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up (kernel compilation, allocator)
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat * 1000


def _heads(sink: EventSink) -> dict[str, HeadAsset]:
    from ..data_location import data_dir
    from ..heads.default_head import default_head

    heads = {"default": default_head()}
    if (data_dir() / "heads" / "ict-facekit" / "ict_facekit.npz").is_file():
        from ..heads.ict_head import ict_head_with_albedo

        heads["ict"] = ict_head_with_albedo()
    else:
        sink.warning("ICT FaceKit head not found (FACEADAPT_DATA): benchmarking the default head only")
    return heads


def _scene(head: HeadAsset, size: int, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(vertices (B, V, 3) camera space, intrinsics (3, 3), rendered image (B, 3, S, S))."""
    from ..heads.landmark_embedding import IMAGE_SIZE, view_camera

    poses = []
    for b in range(batch):
        rotation, translation, k = view_camera(head, -20.0 + 40.0 * b / max(batch - 1, 1))
        poses.append(head.vertices @ rotation.T + translation)
    scale = size / IMAGE_SIZE
    k = torch.tensor([[k[0, 0] * scale, 0, (size - 1) / 2], [0, k[1, 1] * scale, (size - 1) / 2],
                      [0, 0, 1]], dtype=torch.float32)
    vertices = torch.tensor(np.stack(poses), dtype=torch.float32)
    albedo = torch.as_tensor(head.albedo).permute(2, 0, 1).float() / 255
    image, _ = render_textured(vertices, torch.as_tensor(head.faces), torch.as_tensor(head.uv),
                               torch.as_tensor(head.uv_faces), albedo, k, size, size)
    return vertices, k, image.permute(0, 3, 1, 2).contiguous()


@dataclass(frozen=True)
class BenchRenderConfig:
    json: Path | None = report_option()
    device: str = "cpu"  # the candidates are timed on the CPU (docs/renderer.md)


def bench_render(config: BenchRenderConfig, sink: EventSink) -> dict:
    torch.set_num_threads(THREADS)
    available = candidates()
    usable = {n: c for n, c in available.items() if not isinstance(c, str)}
    report: dict = {"benchmark": "render", "threads": THREADS, "device": "cpu",
                    "candidates": {n: ("available" if not isinstance(c, str) else c)
                                   for n, c in available.items()},
                    "precompute_ms": {}, "results": [], "peak_rss_mib": {}}
    for head_name, head in _heads(sink).items():
        faces = torch.as_tensor(head.faces)
        uv, uv_faces = torch.as_tensor(head.uv), torch.as_tensor(head.uv_faces)
        albedo = torch.as_tensor(head.albedo).permute(2, 0, 1).float() / 255
        for size in SIZES:
            atlas_ms = _time_ms(partial(make_atlas, uv, uv_faces, faces, size), 2)
            report["precompute_ms"][f"{head_name}/uv{size}"] = round(atlas_ms, 1)
            atlas = make_atlas(uv, uv_faces, faces, size)
            for batch in BATCHES:
                vertices, k, image = _scene(head, size, batch)
                repeat = 3 if batch == 1 else 2
                row = {"head": head_name, "vertices": head.num_vertices, "triangles": len(head.faces),
                       "size": size, "batch": batch, "ms": {}}
                for name, coverage in usable.items():
                    with using_coverage(coverage):
                        row["ms"][name] = _measure(vertices, k, image, faces, uv, uv_faces, albedo,
                                                   atlas, size, repeat)
                    sink.log(f"{head_name} S={size} B={batch} {name}: " + ", ".join(
                        f"{op} {ms:.1f} ms" for op, ms in row["ms"][name].items()))
                row["ratio_to_fastest"] = _ratios(row["ms"])
                report["results"].append(row)
        report["peak_rss_mib"][head_name] = round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    goal = next((r for r in report["results"] if r["head"] == "ict" and r["size"] == 512
                 and r["batch"] == 1), None)
    if goal is not None:  # measured with the rasterizer FaceAdapt uses
        used = goal["ms"][PRODUCTION]["unwrap_fwd_bwd"]
        report["goal"] = {"rasterizer": PRODUCTION, "unwrap_ict_512_fwd_bwd_ms": round(used, 1),
                          "goal_ms": GOAL_MS, "met": used < GOAL_MS}
    return report


def _measure(vertices: torch.Tensor, k: torch.Tensor, image: torch.Tensor, faces: torch.Tensor,
             uv: torch.Tensor, uv_faces: torch.Tensor, albedo: torch.Tensor, atlas, size: int,
             repeat: int) -> dict[str, float]:
    screen = project(vertices, k)

    def raster() -> None:
        rasterize(screen, faces, size, size)

    def interpolate_sample() -> None:
        v = vertices.clone().requires_grad_(True)
        s = project(v, k)
        fragments = rasterize(s, faces, size, size)
        weights = barycentrics(s, faces, fragments)
        pixel_uv = interpolate_corners(uv[uv_faces], fragments, weights)
        depth = interpolate(v[..., 2:], faces, fragments, weights)
        (sample(albedo, pixel_uv).sum() + depth.sum()).backward()

    def unwrap_fwd_bwd() -> None:
        v = vertices.clone().requires_grad_(True)
        texture, _ = unwrap(image, v, k, faces, atlas)
        texture.sum().backward()

    return {"rasterize": round(_time_ms(raster, repeat), 2),
            "interpolate_sample_fwd_bwd": round(_time_ms(interpolate_sample, repeat), 2),
            "unwrap_fwd_bwd": round(_time_ms(unwrap_fwd_bwd, repeat), 2)}


def _ratios(ms: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    ops = next(iter(ms.values())).keys()
    fastest = {op: min(m[op] for m in ms.values()) for op in ops}
    return {name: {op: round(m[op] / fastest[op], 2) for op in ops} for name, m in ms.items()}
