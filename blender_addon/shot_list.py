"""The shot file Track Strips hands to `python -m backend batch`: one shot per movie strip
(plain Python: the strips come in as FootageSource values, so this is tested without Blender)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from .footage_source import FootageSource

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_TAKEN = ("batch.json", "batch.md")  # the batch's own files beside the results directories


@dataclass(frozen=True)
class StripShot:
    """A strip as a shot: `name` is its results directory in the batch's --out."""

    name: str
    source: FootageSource


def strip_shots(sources: list[FootageSource]) -> list[StripShot]:
    """One shot per strip, named after it: characters a folder name may not hold become '_', and
    names that collide (ignoring case, as macOS and Windows folders do) get -2, -3..."""
    shots: list[StripShot] = []
    taken: set[str] = set(_TAKEN)
    for source in sources:
        base = _UNSAFE.sub("_", source.name).strip("._-")[:90] or "strip"
        name, number = base, 1
        while name.lower() in taken:
            number += 1
            name = f"{base}-{number}"
        taken.add(name.lower())
        shots.append(StripShot(name, source))
    return shots


def shot_file_text(shots: list[StripShot], tracker: str | None, device: str = "auto") -> str:
    """The TOML shot file of `shots` (each its strip's visible frames; `tracker` None: the
    backend's default tracker; `device` auto, cpu or cuda: the preferences')."""
    lines = ["# Written by FaceAdapt's Track Strips: one shot per movie strip.", "",
             "[defaults]", f"device = {_toml_string(device)}"]
    if tracker:
        lines += [f"tracker = {_toml_string(tracker)}"]
    lines.append("")
    for shot in shots:
        lines += ["[[shot]]", f"name = {_toml_string(shot.name)}",
                  f"footage = {_toml_string(str(shot.source.path))}",
                  f"frames = {_toml_string(shot.source.frames_argument())}", ""]
    return "\n".join(lines)


def _toml_string(text: str) -> str:
    """`text` as a TOML basic string: JSON's escapes are TOML's, but for characters outside the
    BMP, which JSON writes as surrogate pairs; ensure_ascii=False leaves those as they are."""
    return json.dumps(text, ensure_ascii=False)
