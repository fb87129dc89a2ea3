"""What a ground-truth clip is made of: a head, a performance source, and a capture domain.

Every factor is a field, so a new variant is a new `ClipSpec` (or a JSON list of them passed to
`make-benchmark --specs`), not new code. The standard set covers both heads, both performance
sources and domains unlike a studio; the quick set is a smoke-sized version of it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..formats.clip_files import RENDER_BACKGROUNDS, RENDER_LIGHTS, RENDER_OCCLUDERS
from ..formats.errors import BadInput

LIGHTS, BACKGROUNDS, OCCLUDERS = RENDER_LIGHTS, RENDER_BACKGROUNDS, RENDER_OCCLUDERS
MAX_YAW_DEG = 80.0  # a larger turn hides the face's far half entirely
HEADS = ("default", "ict", "ict-actor")
PROCEDURAL = "procedural"
MEASURED_PREFIX = "mediapipe:"  # + a video file name under FACEADAPT_DATA/videos


@dataclass(frozen=True)
class Domain:
    """How the clip is lit, framed and degraded.

    light / background: rigs of blender_addon.clip_scene (light: coloured, studio, hard,
    environment, window, neon); lens_mm: 35 mm-equivalent focal length (None: 0.62 m away);
    motion_blur: shutter as a fraction of a frame; blur_px: Gaussian blur of the rendered
    frames, its standard deviation in pixels (a soft or defocused lens; 0: none); noise: sensor
    noise, the standard deviation in 8-bit levels at mid grey (signal-dependent: shot noise
    plus read noise); crf: H.264 constant rate factor of the footage (18 is visually lossless,
    phones stream at 23-30); width, height: pixels; samples: Cycles samples per pixel;
    occluder: what partly covers the face: "none", "glasses" (worn by the head) or "hand" (a
    hand moving in front of the mouth and chin over the middle of the clip).
    """

    light: str = "coloured"
    background: str = "room"
    lens_mm: float | None = None
    motion_blur: float = 0.0
    blur_px: float = 0.0
    noise: float = 0.0
    crf: int = 18
    width: int = 320
    height: int = 320
    samples: int = 12
    occluder: str = "none"


@dataclass(frozen=True)
class ClipSpec:
    """One ground-truth clip. head: "default", "ict", "ict-actor" or a head.npz path (a head made for a
    test, e.g. a known identity); performance: "procedural" or "mediapipe:<video>" (the scores and
    head motion MediaPipe measures on that real clip); frames: length (a measured performance
    is cut to its clip's length); fps: frame rate of a procedural performance; yaw_deg: None
    for a procedural performance's usual head turns (within +-20 degrees of yaw), or the yaw
    its head sweeps to on both sides, reached exactly (procedural performances only)."""

    name: str
    head: str
    performance: str
    frames: int
    domain: Domain = field(default_factory=Domain)
    fps: float = 25.0
    yaw_deg: float | None = None

    def check(self) -> None:
        """Raise BadInput naming the first field that cannot be rendered."""
        d = self.domain
        problems = [
            (self.name.replace("-", "").replace("_", "").isalnum(), "name must be letters, digits, - and _"),
            (self.head in HEADS or self.head.endswith(".npz"),
             f"head must be one of {', '.join(HEADS)} or a head.npz path"),
            (self.performance == PROCEDURAL or self.performance.startswith(MEASURED_PREFIX),
             f"performance must be '{PROCEDURAL}' or '{MEASURED_PREFIX}<video>'"),
            (self.frames >= 3, "frames must be at least 3"),
            (self.fps > 0, "fps must be positive"),
            (d.light in LIGHTS, f"light must be one of {', '.join(LIGHTS)}"),
            (d.background in BACKGROUNDS, f"background must be one of {', '.join(BACKGROUNDS)}"),
            (d.lens_mm is None or 8 <= d.lens_mm <= 400, "lens_mm must be in [8, 400]"),
            (self.yaw_deg is None or (self.performance == PROCEDURAL and 0 < self.yaw_deg <= MAX_YAW_DEG),
             f"yaw_deg must be None or in (0, {MAX_YAW_DEG:g}] with a procedural performance"),
            (0 <= d.motion_blur <= 1, "motion_blur must be in [0, 1]"),
            (0 <= d.blur_px <= 10, "blur_px must be in [0, 10]"),
            (d.occluder in OCCLUDERS, f"occluder must be one of {', '.join(OCCLUDERS)}"),
            (d.noise >= 0, "noise must be >= 0"),
            (0 <= d.crf <= 51, "crf must be in [0, 51]"),
            (d.width >= 32 and d.height >= 32, "width and height must be >= 32"),
            (d.samples >= 1, "samples must be >= 1"),
        ]
        for ok, message in problems:
            if not ok:
                raise BadInput(f"clip spec {self.name!r}: {message}")

    def as_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict) -> ClipSpec:
        known = {f.name for f in fields(ClipSpec)}
        unknown = sorted(set(data) - known)
        domain_data = dict(data.get("domain", {}))
        unknown += sorted(set(domain_data) - {f.name for f in fields(Domain)})
        if unknown:
            raise BadInput(f"clip spec {data.get('name')!r}: unknown field(s) {', '.join(unknown)}")
        try:
            spec = ClipSpec(**{**data, "domain": Domain(**domain_data)})
        except TypeError as exc:
            raise BadInput(f"clip spec {data.get('name')!r}: {exc}") from exc
        spec.check()
        return spec


def load_specs(path: Path) -> tuple[ClipSpec, ...]:
    """A JSON list of clip specs (ClipSpec.as_dict layout)."""
    try:
        entries = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise BadInput(f"cannot read clip specs {path}: {exc}") from exc
    if not isinstance(entries, list) or not entries:
        raise BadInput(f"clip specs {path} must be a non-empty JSON list of clip objects")
    specs = tuple(ClipSpec.from_dict(entry) for entry in entries)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise BadInput(f"clip specs {path} repeat a name")
    return specs


STANDARD_CLIPS = (
    ClipSpec("default-procedural-coloured", "default", PROCEDURAL, 150),
    ClipSpec("default-d10-hard-blur", "default", MEASURED_PREFIX + "lp_driving_d10.mp4", 150,
             Domain(light="hard", motion_blur=0.5, noise=3.0, crf=23)),
    ClipSpec("default-procedural-selfie", "default", PROCEDURAL, 150,
             Domain(light="environment", background="world", lens_mm=24.0, noise=6.0, crf=28,
                    width=256, height=256)),
    # Domains unlike the lab, on the DAM's own head (issue 12): large head turns, glasses, a
    # hand over the mouth, a soft low-resolution camera; other light rigs and colours.
    ClipSpec("default-procedural-turns45", "default", PROCEDURAL, 150,
             Domain(light="window", lens_mm=50.0, noise=2.0), yaw_deg=45.0),
    ClipSpec("default-procedural-glasses", "default", PROCEDURAL, 150,
             Domain(light="studio", background="world", lens_mm=85.0, noise=2.0, crf=23,
                    occluder="glasses")),
    ClipSpec("default-d14-hand-neon", "default", MEASURED_PREFIX + "lp_driving_d14.mp4", 150,
             Domain(light="neon", lens_mm=35.0, motion_blur=0.5, noise=4.0, crf=26,
                    occluder="hand")),
    ClipSpec("default-procedural-lowres-soft", "default", PROCEDURAL, 150,
             Domain(light="hard", lens_mm=28.0, blur_px=1.5, noise=8.0, crf=35, width=128,
                    height=128)),
    ClipSpec("ict-procedural-studio", "ict", PROCEDURAL, 150,
             Domain(light="studio", lens_mm=85.0)),
    ClipSpec("ict-d3-environment-blur", "ict", MEASURED_PREFIX + "lp_driving_d3.mp4", 150,
             Domain(light="environment", background="world", motion_blur=0.5, noise=4.0, crf=23)),
    ClipSpec("ict-d11-lowres", "ict", MEASURED_PREFIX + "lp_driving_d11.mp4", 150,
             Domain(lens_mm=35.0, noise=5.0, crf=30, width=192, height=192)),
)

QUICK_CLIPS = (
    ClipSpec("quick-default-procedural", "default", PROCEDURAL, 24,
             Domain(noise=3.0, crf=23, width=160, height=160, samples=8)),
    ClipSpec("quick-ict-d0-environment", "ict", MEASURED_PREFIX + "lp_driving_d0.mp4", 24,
             Domain(light="environment", background="world", motion_blur=0.5, width=160,
                    height=160, samples=8)),
)
