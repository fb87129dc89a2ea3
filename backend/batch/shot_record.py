"""Which shots a re-run may skip: after a shot's results directory is in place, a record of the
settings it was tracked with (a digest) goes to --out/.faceadapt-batch/<name>.json. A shot is
skipped when its record's digest is the digest of its settings now and its results are there."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from ..formats.atomic import atomic_file
from ..formats.results_dir import RESULT_JSON
from .shot_file import RECORDS_FOLDER, Shot
from .versions import faceadapt_version


def _identity(path: Path) -> dict:
    """What says a file or folder changed without reading it: its resolved path, size, mtime."""
    try:
        stat = path.stat()
    except OSError:
        return {"path": str(path)}
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def settings_digest(shot: Shot) -> str:
    """16 hex digits of SHA-256 over what the shot's results depend on: its settings (the device
    asked for, not the one found), the footage file's identity, a head file's, and FaceAdapt's
    version."""
    settings = asdict(shot.settings)
    settings.pop("out")
    head = Path(shot.settings.head)
    document = {"settings": settings, "footage": _identity(Path(shot.settings.footage)),
                "head": _identity(head) if head.suffix == ".npz" else shot.settings.head,
                "faceadapt": faceadapt_version()}
    text = json.dumps(document, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def record_path(out: Path, name: str) -> Path:
    return Path(out) / RECORDS_FOLDER / f"{name}.json"


def finished_before(shot: Shot, out: Path) -> bool:
    """Whether the shot's results are in place from a run with the same settings."""
    try:
        record = json.loads(record_path(out, shot.name).read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(record, dict) and record.get("digest") == settings_digest(shot)
            and (shot.settings.out / RESULT_JSON).is_file())


def record_finished(shot: Shot, out: Path) -> None:
    """Note that the shot's results directory holds what its current settings give."""
    with atomic_file(record_path(out, shot.name)) as tmp:
        tmp.write_text(json.dumps({"name": shot.name, "digest": settings_digest(shot)}) + "\n")
