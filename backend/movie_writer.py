"""Writing RGB frames as an H.264 mp4 with the ffmpeg binary shipped by imageio-ffmpeg."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .formats.atomic import atomic_file


def write_movie(frames: Iterable[np.ndarray], path: Path, fps: float, crf: int | None = None) -> Path:
    """Encode (H, W, 3) uint8 frames (cropped to even sizes for yuv420p) atomically; `crf` sets
    H.264's constant rate factor (0-51, higher = more compression) instead of the default
    high quality."""
    import imageio_ffmpeg

    quality = [] if crf is None else ["-crf", str(crf)]
    with atomic_file(Path(path)) as tmp:
        writer = None
        for frame in frames:
            frame = frame[: frame.shape[0] // 2 * 2, : frame.shape[1] // 2 * 2]
            if writer is None:
                writer = imageio_ffmpeg.write_frames(str(tmp), (frame.shape[1], frame.shape[0]),
                                                     fps=fps, codec="libx264",
                                                     quality=8 if crf is None else None,
                                                     output_params=["-f", "mp4", *quality],
                                                     macro_block_size=1)
                writer.send(None)
            writer.send(np.ascontiguousarray(frame))
        if writer is None:
            raise ValueError(f"no frames to write to {path}")
        writer.close()
    return Path(path)
