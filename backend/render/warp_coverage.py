"""Triangle coverage with NVIDIA Warp kernels: one thread per triangle, a z-buffer of packed
(depth, triangle id) keys resolved with an atomic minimum. The same kernel runs on CPU (LLVM)
and CUDA, on torch tensors without copies. Chosen over a plain-torch rasterizer by
measurement (docs/renderer.md).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import warnings
from pathlib import Path
from types import ModuleType

import torch

from ..cache import writable_cache_subdir

# Depth is stored in micrometres in the upper 32 bits of the key: 1 µm resolution up to 2 km,
# and the lower 32 bits hold the triangle id, so the nearest triangle (then the lowest id) wins.
_DEPTH_SCALE = 1.0e6
_EMPTY = (1 << 63) - 1
_warp = None
_loaded_on: set[str] = set()  # Warp devices the kernel module is loaded on


def _load():
    """Import and initialise Warp once, with its kernel cache under FaceAdapt's cache."""
    global _warp
    if _warp is None:
        import warp as wp

        wp.config.log_level = wp.LOG_WARNING  # no banner on stdout (the events channel)
        wp.config.kernel_cache_dir = str(_kernel_cache_dir())
        wp.init()
        _warp = (wp, _build_kernels(wp))
    return _warp


def _kernel_cache_dir() -> Path:
    """<cache>/warp, or a folder of this process's own, removed at exit, when the cache cannot
    be written (a read-only cache on farm containers): Warp compiles its kernels into a folder."""
    cache = writable_cache_subdir("warp")
    if cache is not None:
        return cache
    private = Path(tempfile.mkdtemp(prefix="faceadapt-warp-"))
    atexit.register(shutil.rmtree, private, ignore_errors=True)
    return private


def _load_kernels_on(wp: ModuleType, kernel: object, device: str) -> None:
    """Load the kernel module on `device` once; an unreadable cache entry (a truncated .meta
    fails with a bare JSON error, a truncated .o with 'Failed to load CPU module') is cleared
    and the kernels compiled afresh."""
    if device in _loaded_on:
        return
    try:
        wp.load_module(kernel.module, device=device)
    except Exception as exc:  # Warp raises plain Exception and json errors for a bad cache
        cache = wp.config.kernel_cache_dir
        warnings.warn(f"Warp's kernel cache {cache} could not be loaded ({exc}); cleared and "
                      f"the kernels compiled again", RuntimeWarning, stacklevel=2)
        wp.clear_kernel_cache()
        try:
            wp.load_module(kernel.module, device=device)
        except Exception as again:
            raise RuntimeError(f"Warp could not compile its kernels into {cache} ({again}); "
                               f"delete that folder and run again") from again
    _loaded_on.add(device)


def _build_kernels(wp: ModuleType) -> object:
    @wp.kernel
    def cover(screen: wp.array2d(dtype=wp.vec3), faces: wp.array(dtype=wp.vec3i),
              keys: wp.array3d(dtype=wp.int64), near: float, cull: int):
        b, t = wp.tid()
        face = faces[t]
        p0, p1, p2 = screen[b, face[0]], screen[b, face[1]], screen[b, face[2]]
        if not (p0[2] > near and p1[2] > near and p2[2] > near):
            return  # behind the camera, or NaN (comparisons with NaN are false)
        area = (p1[0] - p0[0]) * (p2[1] - p0[1]) - (p2[0] - p0[0]) * (p1[1] - p0[1])
        if not (wp.abs(area) > 1.0e-12):
            return
        if cull != 0 and area >= 0.0:
            return
        height, width = keys.shape[1], keys.shape[2]
        x0 = wp.max(int(wp.ceil(wp.min(wp.min(p0[0], p1[0]), p2[0]))), 0)
        x1 = wp.min(int(wp.floor(wp.max(wp.max(p0[0], p1[0]), p2[0]))), width - 1)
        y0 = wp.max(int(wp.ceil(wp.min(wp.min(p0[1], p1[1]), p2[1]))), 0)
        y1 = wp.min(int(wp.floor(wp.max(wp.max(p0[1], p1[1]), p2[1]))), height - 1)
        for y in range(y0, y1 + 1):
            py = float(y)
            for x in range(x0, x1 + 1):
                px = float(x)
                w0 = ((p1[0] - px) * (p2[1] - py) - (p2[0] - px) * (p1[1] - py)) / area
                w1 = ((p2[0] - px) * (p0[1] - py) - (p0[0] - px) * (p2[1] - py)) / area
                w2 = 1.0 - w0 - w1
                if w0 >= 0.0 and w1 >= 0.0 and w2 >= 0.0:
                    depth = 1.0 / (w0 / p0[2] + w1 / p1[2] + w2 / p2[2])
                    key = (wp.int64(depth * 1.0e6) << wp.int64(32)) + wp.int64(t)
                    wp.atomic_min(keys, b, y, x, key)

    return cover


def cover(screen: torch.Tensor, faces: torch.Tensor, height: int, width: int, near: float,
          cull_backfaces: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(triangle (B, H, W) int64, -1 where empty; depth (B, H, W) float32, inf where empty)."""
    wp, kernel = _load()
    device = screen.device
    screen = screen.detach().float().contiguous()
    faces32 = faces.to(device=device, dtype=torch.int32).contiguous()
    keys = torch.full((screen.shape[0], height, width), _EMPTY, dtype=torch.int64, device=device)
    if faces32.shape[0] > 0 and screen.shape[0] > 0:
        _load_kernels_on(wp, kernel, _warp_device(device))
        wp.launch(kernel, dim=(screen.shape[0], faces32.shape[0]),
                  inputs=[wp.from_torch(screen, dtype=wp.vec3), wp.from_torch(faces32, dtype=wp.vec3i),
                          wp.from_torch(keys), float(near), int(cull_backfaces)],
                  device=_warp_device(device))
    empty = keys == _EMPTY
    triangle = torch.where(empty, torch.full_like(keys, -1), keys & 0xFFFFFFFF)
    depth = torch.where(empty, torch.full_like(keys, 0), keys >> 32).float() / _DEPTH_SCALE
    depth = torch.where(empty, torch.full_like(depth, float("inf")), depth)
    return triangle, depth


def _warp_device(device: torch.device) -> str:
    return "cpu" if device.type == "cpu" else f"cuda:{device.index or 0}"
