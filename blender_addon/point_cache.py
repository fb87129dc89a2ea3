"""The `.pc2` point cache Blender's Mesh Cache modifier plays: per-frame vertex positions of a
mesh, so a long clip animates without a shape key or keyframe per frame.

Layout (little-endian, 32-byte header then the samples):
    12 bytes  signature b"POINTCACHE2\\0"
    int32     file version, 1
    int32     number of points V
    float32   start frame
    float32   sample rate (frames between samples; 1.0 = one sample per frame)
    int32     number of samples F
    F * V * 3 float32  positions, sample-major: sample 0's V points (x, y, z), then sample 1's
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from ..backend.formats.atomic import atomic_file

SIGNATURE = b"POINTCACHE2\0"
VERSION = 1
HEADER = struct.Struct("<12siiffi")  # signature, version, points, start, rate, samples
_SAMPLE = np.dtype("<f4")
# Frames written per block: enough to amortise the write calls, small enough that the float32
# little-endian copy of a block stays a few tens of MB for any head (5,000 x 10,000 vertices is
# 600 MB of positions; this never holds a second copy of all of it).
_BLOCK_BYTES = 32 * 1024 * 1024


def write_pc2(path: Path, vertices: np.ndarray, start_frame: float,
              sample_rate: float = 1.0) -> None:
    """Write `vertices` (F, V, 3) float, metres (any float dtype; stored float32) as a point
    cache whose first sample plays at scene frame `start_frame`, one sample every `sample_rate`
    frames. Written to a temp file beside `path` and renamed onto it when complete, so a reader
    never sees a half-written cache; ValueError naming `path` for arrays it cannot hold."""
    path = Path(path)
    if vertices.ndim != 3 or vertices.shape[2] != 3:
        raise ValueError(f"{path}: point cache vertices must be (frames, points, 3), got "
                         f"{vertices.shape}")
    if not np.isfinite(sample_rate) or sample_rate <= 0 or not np.isfinite(start_frame):
        raise ValueError(f"{path}: start frame {start_frame} and sample rate {sample_rate} must be "
                         "finite, the rate above 0")
    frames, points, _ = vertices.shape
    per_block = max(1, _BLOCK_BYTES // max(1, points * 3 * _SAMPLE.itemsize))
    with atomic_file(path) as tmp, open(tmp, "wb") as stream:
        stream.write(HEADER.pack(SIGNATURE, VERSION, points, float(start_frame), float(sample_rate),
                                 frames))
        for first in range(0, frames, per_block):
            block = np.ascontiguousarray(vertices[first:first + per_block], dtype=_SAMPLE)
            # Checked per block, before anything is renamed into place: Blender would play NaN
            # positions as a mesh collapsed or exploded without saying why.
            if not np.isfinite(block).all():
                raise ValueError(f"{path}: vertices of frames {first}..{first + len(block) - 1} "
                                 "contain NaN or inf")
            stream.write(block.tobytes())


def read_pc2(path: Path) -> tuple[np.ndarray, float, float]:
    """Read a point cache: (vertices (F, V, 3) float32, start frame, sample rate). ValueError
    naming the file and what is wrong when the signature, version or the sizes the header
    declares do not match the file."""
    path = Path(path)
    size = path.stat().st_size
    if size < HEADER.size:
        raise ValueError(f"{path}: {size} bytes, shorter than the {HEADER.size}-byte point cache "
                         "header")
    with open(path, "rb") as stream:
        signature, version, points, start, rate, samples = HEADER.unpack(stream.read(HEADER.size))
    if signature != SIGNATURE:
        raise ValueError(f"{path}: not a point cache (signature {signature!r}, expected "
                         f"{SIGNATURE!r})")
    if version != VERSION:
        raise ValueError(f"{path}: point cache version {version}, only version {VERSION} is read")
    if points < 0 or samples < 0:
        raise ValueError(f"{path}: header declares {points} points and {samples} samples")
    expected = HEADER.size + samples * points * 3 * _SAMPLE.itemsize
    if size != expected:
        raise ValueError(f"{path}: header declares {samples} samples of {points} points "
                         f"({expected} bytes), the file has {size} bytes"
                         + (" (truncated)" if size < expected else ""))
    vertices = np.fromfile(path, dtype=_SAMPLE, count=samples * points * 3, offset=HEADER.size)
    return vertices.astype(np.float32, copy=False).reshape(samples, points, 3), start, rate
