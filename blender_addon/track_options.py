"""What the tracking panel asks for, as `python -m backend track` arguments (no bpy).

Quality presets name what they set, so the panel can say it: *preview* is the landmark fit
without textures (seconds for a short clip), *production* the default tracker (the encoder
adapted to the clip) with 512-texel textures. *Custom* takes the advanced settings as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from .backend_job import UserError

TRACKER_ITEMS = (
    ("adapted", "Adapted (default)", "The face model's encoder adapted to the clip: the paper's "
     "method, the most accurate; minutes"),
    ("landmark-fit", "Landmark Fit", "ARKit weights and pose fitted to detected landmarks: fast, "
     "any head"),
    ("encoder", "Encoder", "The face model's encoder without adaptation"),
)

TRACKER_LABELS = {name: label for name, label, _ in TRACKER_ITEMS}


@dataclass(frozen=True)
class Preset:
    label: str
    tracker: str
    texture_size: int

    def describe(self) -> str:
        textures = f"{self.texture_size}-texel textures" if self.texture_size else "no textures"
        return f"{self.label}: {TRACKER_LABELS[self.tracker]}, {textures}"


PRESETS = {
    "preview": Preset("Preview", "landmark-fit", 0),
    "production": Preset("Production", "adapted", 512),
}


@dataclass(frozen=True)
class TrackChoices:
    """The panel's settings: `quality` one of PRESETS or "custom" (then `tracker` and
    `texture_size` apply); `frame_range` (first, last) source frames to narrow the footage's own
    range, or None; `model` a face model name or folder, "" for the default."""

    quality: str
    tracker: str
    texture_size: int
    model: str = ""
    frame_range: tuple[int, int] | None = None

    def resolved(self) -> tuple[str, int]:
        """(tracker, texture size) after the preset."""
        preset = PRESETS.get(self.quality)
        return (preset.tracker, preset.texture_size) if preset else (self.tracker, self.texture_size)


def track_arguments(choices: TrackChoices, head_spec: str, first: int, last: int) -> list[str]:
    """`track` options for the footage's source frames first..last (inclusive, 0-based) onto
    the head `head_spec` ("default" or a head file). UserError for a frame range outside the
    footage. A head from a file is tracked by the landmark fit unless a face model is chosen."""
    tracker, texture_size = choices.resolved()
    if choices.frame_range is not None:
        start, end = choices.frame_range
        if not first <= start <= end <= last:
            raise UserError(f"the frame range {start}-{end} is not within the footage's frames "
                            f"{first}-{last}: fix it in the Advanced panel")
        first, last = start, end
    if head_spec != "default" and tracker != "landmark-fit" and choices.model in ("", "default"):
        # The default model is another person's head: a head from a file is fitted by landmarks,
        # unless a face model is chosen for it (a personal model's own head; the backend refuses
        # a head of another topology than the model's).
        tracker = "landmark-fit"
    args = ["--frames", f"{first}-{last}", "--head", head_spec, "--tracker", tracker,
            "--texture-size", str(texture_size)]
    if choices.model and tracker != "landmark-fit":
        args += ["--model", choices.model]
    return args
