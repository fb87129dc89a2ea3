"""`make-benchmark`: render ground-truth clips with Blender (Cycles) and degrade them like a
camera would.

Each clip folder holds `footage.mp4` (what trackers see), `truth.npz` (backend.protocol
TRUTH_KEYS), `head.npz` (the head rendered, for tracking and scoring), `performance.npz` and
`clip.json` (the spec, the seed, the render's settings and timings). Clips are made in a
temporary folder and renamed when complete; a folder already holding the same spec and seed
is kept, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import shutil
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..blender_program import run_blender_program
from ..data_location import data_file
from ..events import EventSink
from ..formats.atomic import DirectoryKind, atomic_directory
from ..formats.errors import BadInput
from ..formats.head_file import save_head
from ..heads.default_head import resolve_head
from ..movie_writer import write_movie
from .clip_specs import MEASURED_PREFIX, PROCEDURAL, ClipSpec
from .performances import measured_performance, procedural_performance

FOOTAGE = "footage.mp4"
TRUTH = "truth.npz"
HEAD = "head.npz"
CLIP_JSON = "clip.json"
PERFORMANCE = "performance.npz"
# A clip folder (made, stale or from another seed) is remade in place; any other folder of
# that name is refused, never deleted.
CLIP_DIRECTORY = DirectoryKind("FaceAdapt benchmark clip", CLIP_JSON, "spec",
                               frozenset({FOOTAGE, TRUTH, HEAD, PERFORMANCE, CLIP_JSON}))


def clip_seed(seed: int, name: str) -> int:
    """A per-clip seed from the benchmark seed and the clip's name (stable across runs)."""
    return int(np.random.SeedSequence([seed, zlib.crc32(name.encode())]).generate_state(1)[0] >> 1)


def is_complete(folder: Path, spec: ClipSpec, seed: int) -> bool:
    """Whether `folder` already holds this spec rendered with this seed. A clip made before a
    spec field existed counts as made with that field's default (a new field's default always
    renders what the clip was rendered with before)."""
    try:
        clip = json.loads((folder / CLIP_JSON).read_text())
        made = ClipSpec.from_dict(clip["spec"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError, BadInput):
        return False
    return (made == spec and clip.get("seed") == seed
            and all((folder / name).is_file() for name in (FOOTAGE, TRUTH, HEAD)))


def sensor_noise(image: np.ndarray, level: float, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8 with signal-dependent Gaussian noise: standard deviation `level` (8-bit
    levels) at mid grey, rising with brightness like shot noise over a read-noise floor."""
    if level <= 0:
        return image
    signal = image.astype(np.float32)
    sigma = level * np.sqrt((0.3 + 0.7 * signal / 255.0) / 0.65)
    return np.clip(signal + sigma * rng.standard_normal(image.shape, np.float32), 0, 255).round(
    ).astype(np.uint8)


def lens_blur(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """(H, W, 3) uint8 blurred by a Gaussian of standard deviation sigma_px pixels (a soft or
    defocused lens, before the sensor adds its noise); the image itself when sigma_px is 0."""
    import cv2

    if sigma_px <= 0:
        return image
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma_px, sigmaY=sigma_px,
                            borderType=cv2.BORDER_REFLECT)


def degraded_frames(frames_dir: Path, noise: float, rng: np.random.Generator,
                    blur_px: float = 0.0) -> Iterator[np.ndarray]:
    """The rendered PNG frames (RGB uint8) in order, blurred (lens_blur) and with sensor noise
    added."""
    import cv2

    for path in sorted(frames_dir.glob("*.png")):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise OSError(f"cannot read rendered frame {path}")
        yield sensor_noise(lens_blur(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), blur_px), noise, rng)


def make_clip(spec: ClipSpec, out_dir: Path, seed: int, sink: EventSink) -> Path:
    """Render, degrade and write one clip into out_dir/<spec.name>; returns the folder."""
    spec.check()
    folder = out_dir / spec.name
    if is_complete(folder, spec, seed):
        sink.log(f"{spec.name}: already made with seed {seed}, kept")
        return folder
    head = resolve_head(spec.head)
    own_seed = clip_seed(seed, spec.name)
    start = time.perf_counter()
    with atomic_directory(folder, overwrite=True, kind=CLIP_DIRECTORY) as tmp:
        save_head(head, tmp / HEAD)
        if spec.performance == PROCEDURAL:
            performance = procedural_performance(tuple(head.blendshape_names), spec.frames,
                                                 spec.fps, own_seed, spec.yaw_deg)
        else:
            video = data_file("videos/" + spec.performance.removeprefix(MEASURED_PREFIX))
            if not video.is_file():
                raise BadInput(f"clip {spec.name}: performance source {video} does not exist")
            sink.log(f"{spec.name}: measuring the performance on {video.name} with MediaPipe")
            performance = measured_performance(video, head, spec.frames)
        performance.save(tmp / PERFORMANCE)
        d = spec.domain
        arguments = ["--head", str(tmp / HEAD), "--performance", str(tmp / PERFORMANCE),
                     "--out", str(tmp / "render"), "--width", str(d.width), "--height",
                     str(d.height), "--samples", str(d.samples), "--seed", str(own_seed % 2**31),
                     "--light", d.light, "--background", d.background,
                     "--motion-blur", str(d.motion_blur), "--occluder", d.occluder]
        if d.lens_mm is not None:
            arguments += ["--lens-mm", str(d.lens_mm)]
        run_blender_program("render_clip", arguments, f"render {spec.name}", sink)
        render = json.loads((tmp / "render" / CLIP_JSON).read_text())
        rng = np.random.default_rng([seed, own_seed, 1])
        write_movie(degraded_frames(tmp / "render" / "frames", d.noise, rng, d.blur_px), tmp / FOOTAGE,
                    float(render["fps"]), crf=d.crf)
        (tmp / "render" / TRUTH).rename(tmp / TRUTH)
        clip = {"spec": spec.as_dict(), "seed": seed, "clip_seed": own_seed, "render": render,
                "performance_source": performance.source,
                "seconds": round(time.perf_counter() - start, 1)}
        (tmp / CLIP_JSON).write_text(json.dumps(clip, indent=1, allow_nan=False) + "\n")
        shutil.rmtree(tmp / "render")  # the clean frames: footage.mp4 is what is scored
    return folder


def make_clips(specs: tuple[ClipSpec, ...], out_dir: Path, seed: int, sink: EventSink) -> list[Path]:
    """Make every clip of `specs` under out_dir (kept when already made); returns the folders."""
    for spec in specs:
        spec.check()
    out_dir.mkdir(parents=True, exist_ok=True)
    folders = []
    for i, spec in enumerate(specs):
        folders.append(make_clip(spec, out_dir, seed, sink))
        sink.progress("clips", i + 1, len(specs))
    return folders
