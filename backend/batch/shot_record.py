"""Which shots a re-run may skip: after a shot's results directory is in place, a record of the
settings it was tracked with (a digest, taken when the shot was sent off) goes to
--out/.faceadapt-batch/<name>.json; before a shot runs again its record is emptied (the results
there are still the batch's, but of no known settings). A shot is skipped when its record's
digest is the digest of its settings now and its results are there."""

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
    """What says a file changed without reading it: its resolved path, size, mtime; of a folder
    (an image sequence), those of every file in it (frames re-rendered in place change them,
    not the folder's own)."""
    try:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file())
            return {"path": str(path.resolve()), "files": [[p.name, p.stat().st_size, p.stat().st_mtime_ns]
                                                           for p in files]}
        stat = path.stat()
    except OSError:
        return {"path": str(path)}
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _model_identity(spec: str) -> dict | str:
    """The identity of every file of the model folder `spec` names (a model retrained in place,
    or the shipped default replaced by an upgrade, is another model); the spec itself when it
    names no model folder (the shot then fails on it, and its digest does not matter)."""
    from ..dam.model_folder import resolve_model
    from ..formats.errors import BadInput

    try:
        return _identity(resolve_model(spec))
    except BadInput:
        return spec


def settings_digest(shot: Shot) -> str:
    """16 hex digits of SHA-256 over what the shot's results depend on: its settings (the device
    asked for, not the one found), the footage file's identity, a head file's, the model
    folder's files', and FaceAdapt's version."""
    settings = asdict(shot.settings)
    settings.pop("out")
    head = Path(shot.settings.head)
    document = {"settings": settings, "footage": _identity(Path(shot.settings.footage)),
                "head": _identity(head) if head.suffix == ".npz" else shot.settings.head,
                "model": _model_identity(shot.settings.model), "faceadapt": faceadapt_version()}
    text = json.dumps(document, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def record_path(out: Path, name: str) -> Path:
    return Path(out) / RECORDS_FOLDER / f"{name}.json"


def has_record(out: Path, name: str) -> bool:
    """Whether a batch in `out` wrote (or began to write) the results at --out/<name>."""
    return record_path(out, name).is_file()


def recorded_digest(out: Path, name: str) -> str | None:
    """The digest of the settings the results at --out/<name> were tracked with (None: none
    known)."""
    try:
        record = json.loads(record_path(out, name).read_text())
    except (OSError, ValueError):
        return None
    return record.get("digest") if isinstance(record, dict) else None


def finished_before(shot: Shot, out: Path, digest: str) -> bool:
    """Whether the shot's results are in place from a run with the settings of `digest`."""
    return recorded_digest(out, shot.name) == digest and (shot.settings.out / RESULT_JSON).is_file()


def record_running(out: Path, name: str) -> None:
    """Empty a shot's record before it runs: a run stopped after its results landed and before
    their record would otherwise leave the old settings' record beside the new results."""
    _write(out, name, None)


def record_finished(shot: Shot, out: Path, digest: str) -> None:
    """Note that the shot's results directory holds what the settings of `digest` give."""
    _write(out, shot.name, digest)


def _write(out: Path, name: str, digest: str | None) -> None:
    with atomic_file(record_path(out, name)) as tmp:
        tmp.write_text(json.dumps({"name": name, "digest": digest}) + "\n")
