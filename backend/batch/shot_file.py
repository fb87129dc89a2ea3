"""The shot file of `python -m backend batch` (TOML), read and checked whole before any shot runs.

    [defaults]                      # optional: every shot's fields unless it sets its own
    tracker = "landmark-fit"
    texture_size = 0
    device = "auto"                 # auto | cpu | cuda (cuda: the shot asks Ray for a GPU)

    [defaults.adaptation]           # track's --adapt-* options, by field name
    passes = 4

    [[shot]]
    name = "sh010"                  # its results directory: --out/sh010 (default: the footage's stem)
    footage = "plates/sh010.mp4"    # relative to the shot file's folder
    frames = "0-99"

A shot's fields are `track`'s options by their field names (`texture_size` for --texture-size;
docs/batch.md lists them); `out` and `overwrite` are the batch's own. Paths (footage, a head
file, a model folder) are relative to the shot file's folder. Every problem of every shot
is reported at once, each naming the shot and the field.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config_parser import config_from_mapping, option_fields
from ..device import DEVICE_CHOICES
from ..formats.atomic import check_replaceable
from ..formats.errors import BadInput
from ..formats.results_dir import RESULTS_DIRECTORY
from ..track import TrackSettings
from .shot_inputs import check_track_inputs

# What the batch writes in --out beside the shots' results directories.
BATCH_JSON, BATCH_MARKDOWN, RECORDS_FOLDER = "batch.json", "batch.md", ".faceadapt-batch"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_BATCH_FIELDS = ("out", "overwrite")  # set by the batch: --out/<name>, replaced when settings change
_SHOT_ONLY = ("name", "footage")


@dataclass(frozen=True)
class Shot:
    """One shot: `settings.out` is --out/<name>; `settings.device` is the device asked for
    (auto, cpu or cuda), resolved where the shot runs."""

    name: str
    number: int  # 1-based position in the shot file, for messages
    settings: TrackSettings
    frame_count: int  # frames it tracks

    @property
    def wants_gpu(self) -> bool:
        return self.settings.device == "cuda"


def load_shot_file(path: Path, out: Path) -> list[Shot]:
    """The shots of the file at `path`, their results directories in `out`; BadInput listing
    every problem (TOML syntax, unknown or mistyped fields, missing footage, frame ranges past
    the clip, unknown trackers or models, duplicate names, a foreign folder in the way)."""
    # Absolute paths: shots may run on other machines and in other folders, and the skip digest
    # must not depend on where the batch was started from.
    path, out = Path(os.path.abspath(path)), Path(os.path.abspath(out))
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # a BOM (Windows editors) is fine
    except FileNotFoundError:
        raise BadInput(f"shot file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"shot file {path} cannot be read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"shot file {path} is not valid TOML: {exc}") from None
    problems = [f"unknown table or key '{key}' (a shot file has [defaults] and [[shot]] tables)"
                for key in document if key not in ("defaults", "shot")]
    defaults = document.get("defaults", {})
    entries = document.get("shot", [])
    if not isinstance(defaults, dict):
        problems.append("'defaults' must be a table ([defaults])")
        defaults = {}
    problems += [f"[defaults]: field '{key}' is set per shot only" for key in _SHOT_ONLY if key in defaults]
    shot_fields = {f.name for f in option_fields(TrackSettings)} - set(_BATCH_FIELDS) | {"device"}
    unknown = sorted(set(defaults) - shot_fields - set(_SHOT_ONLY) - set(_BATCH_FIELDS))
    known = ", ".join(sorted(shot_fields))
    problems += [f"[defaults]: unknown field '{key}' (fields: {known})" for key in unknown]
    defaults = {k: v for k, v in defaults.items() if k not in unknown}
    defaults_problems = _defaults_problems(defaults)
    if defaults_problems:  # named once here, not again for every shot
        problems += defaults_problems
        defaults = {}
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        problems.append("'shot' must be an array of tables ([[shot]])")
        entries = []
    elif not entries and not problems:
        problems.append("no shots: add a [[shot]] table with at least a footage field")
    shots: list[Shot] = []
    for number, entry in enumerate(entries, 1):
        shot, shot_problems = _shot(number, defaults, entry, path.parent, out)
        problems += shot_problems
        if shot:
            shots.append(shot)
    problems += _duplicate_names(shots)
    if problems:
        raise BadInput(f"shot file {path}: {len(problems)} problem(s), nothing was run:\n  - "
                       + "\n  - ".join(problems))
    return shots


def _defaults_problems(defaults: dict[str, Any]) -> list[str]:
    """What is wrong with the [defaults] table's own values (types, choices, the adaptation's
    checks), checked as a shot of them would be."""
    problems = []
    fields = dict(defaults)
    device = fields.pop("device", "auto")
    if device not in DEVICE_CHOICES:
        problems.append(f"[defaults]: field 'device' = {device!r}: must be one of {', '.join(DEVICE_CHOICES)}")
    _, config_problems = config_from_mapping(
        TrackSettings, {k: v for k, v in fields.items() if k not in (*_BATCH_FIELDS, *_SHOT_ONLY)},
        "[defaults]", footage=Path("."), out=Path("."), overwrite=True)
    return problems + config_problems


def _name_of(stem: str) -> str:
    """A shot's default name: its footage's file stem, with what a name may not hold as '_'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem).lstrip("._-")[:100] or "shot"


def _shot(number: int, defaults: dict[str, Any], entry: dict[str, Any], base: Path,
          out: Path) -> tuple[Shot | None, list[str]]:
    footage = entry.get("footage")
    name = entry.get("name", _name_of(Path(footage).stem) if isinstance(footage, str) else None)
    where = f"shot {number}" + (f" ({name})" if isinstance(name, str) else "")
    problems = [f"{where}: field '{key}' is the batch's own (results go to --out/<name>)"
                for key in _BATCH_FIELDS if key in entry or key in defaults]
    if not isinstance(footage, str):
        return None, [*problems, f"{where}: field 'footage' is required (a movie file or image folder)"]
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in (BATCH_JSON, BATCH_MARKDOWN):
        return None, [*problems, f"{where}: field 'name' = {name!r}: use letters, digits, '.', '_' and "
                      "'-' (at most 100, not starting with '.' or '-'); it names the results directory"]
    fields = {**defaults, **{k: v for k, v in entry.items() if k not in (*_BATCH_FIELDS, "name")}}
    if isinstance(defaults.get("adaptation"), dict) and isinstance(entry.get("adaptation"), dict):
        fields["adaptation"] = {**defaults["adaptation"], **entry["adaptation"]}
    fields["footage"] = os.path.abspath(base / Path(footage).expanduser())
    for key in ("head", "model"):  # paths among them are the shot file's, like the footage
        value = fields.get(key)
        if isinstance(value, str) and ("/" in value or value.startswith(".") or value.endswith(".npz")):
            fields[key] = os.path.abspath(base / Path(value).expanduser())
    device = fields.pop("device", "auto")
    if device not in DEVICE_CHOICES:
        problems.append(f"{where}: field 'device' = {device!r}: must be one of {', '.join(DEVICE_CHOICES)}")
        device = "auto"
    settings, config_problems = config_from_mapping(
        TrackSettings, {k: v for k, v in fields.items() if k not in _BATCH_FIELDS}, where,
        out=out / name, overwrite=True, device=device)
    problems += config_problems
    if settings is None or problems:
        return None, problems
    if settings.out.exists() or settings.out.is_symlink():
        foreign = RESULTS_DIRECTORY.foreign_to(settings.out)
        if foreign:
            return None, [f"{where}: {settings.out} is in the way ({foreign}); move it or give the shot "
                          "another name"]
    try:
        frame_count = check_track_inputs(settings)
        check_replaceable(settings.out, True, RESULTS_DIRECTORY, inputs=(settings.footage,))
    except BadInput as exc:
        return None, [f"{where}: {exc.message}"]
    return Shot(name, number, settings, frame_count), []


def _duplicate_names(shots: list[Shot]) -> list[str]:
    """Shots that would write one results directory (names compared ignoring case: macOS and
    Windows folders do)."""
    seen: dict[str, Shot] = {}
    problems = []
    for shot in shots:
        first = seen.setdefault(shot.name.lower(), shot)
        if first is not shot:
            problems.append(f"shot {shot.number} ({shot.name}): duplicate output name, shot {first.number} "
                            f"is also '{first.name}'; give each shot its own name")
    return problems
