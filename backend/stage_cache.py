"""Cached stages of `track`: a re-run with other settings redoes only the stages whose inputs
changed (detections: detection_cache.py; the face-model trackers' crops, encoding and
adaptation: trackers/face_model_stages.py).

An entry is a folder `<cache>/stages/<stage>/<key>/`, its key the SHA-256 of everything its
content depends on (`stage_key`): the key of the stage before it, the settings, the code that
computes it (`code_digest`) and the packages it runs on. It is built in a private folder beside
it and renamed into place when complete, so a reader never sees half an entry, and two
processes building the same entry both finish (the second one's copy is discarded). Entries are
disposable (DESIGN.md): one that fails to load is deleted and built again; a cache that cannot
be written means building in the caller's temporary folder instead. Nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .cache import writable_cache_subdir
from .events import EventSink
from .formats.errors import BadInput

T = TypeVar("T")
BACKEND = Path(__file__).parent
# What an entry that fails to load raises (a truncated array, a missing file, wrong shapes).
UNREADABLE = (BadInput, OSError, ValueError, KeyError, TypeError)


def stage_key(**parts: object) -> str:
    """SHA-256 (hex) of `parts`, JSON-serialisable values (order of the names is irrelevant)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def code_digest(*paths: Path, suffixes: tuple[str, ...] = (".py", ".json")) -> str:
    """SHA-256 (hex) over the files with `suffixes` among `paths` (files, or folders searched
    whole) of the backend: a change to any of them changes the key of what they compute."""
    digest = hashlib.sha256()
    for root in paths:
        root = Path(root)
        for path in [root] if root.is_file() else sorted(root.rglob("*")):
            if path.is_file() and path.suffix in suffixes:
                digest.update(path.relative_to(BACKEND).as_posix().encode() + b"\0")
                digest.update(path.read_bytes())
    return digest.hexdigest()


def package_versions(names: tuple[str, ...]) -> dict[str, str | None]:
    """The installed version of each package (None when absent)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cached_stage(stage: str, key: str, build: Callable[[Path], None], read: Callable[[Path], T],
                 fallback: Path, sink: EventSink) -> tuple[T, bool]:
    """(read(entry), whether it was reused) for the entry `key` of `stage` (a folder name
    under <cache>/stages/, its last part naming the stage in the log). An entry that is
    absent, or that `read` refuses (raising one of UNREADABLE), is made by build(folder) into an
    empty folder that does not exist yet, then read. Without a writable cache the entry is built
    at `fallback` (a folder of the caller's that must not exist yet, e.g. in its temp folder)."""
    root = writable_cache_subdir(f"stages/{stage}")
    name = stage.rsplit("/", 1)[-1]
    if root is None:
        build(fallback)
        return read(fallback), False
    entry = root / key
    if entry.is_dir():
        try:
            value = read(entry)
            os.utime(entry)  # the entry's age says when it was last used
            sink.log(f"{name}: from the stage cache ({key[:12]})")
            return value, True
        except UNREADABLE as exc:
            sink.log(f"{name}: rebuilding a stage cache entry that does not load ({exc})")
            shutil.rmtree(entry, ignore_errors=True)
    private = Path(tempfile.mkdtemp(prefix=f".{key[:12]}-", dir=root))
    try:
        build(private / "entry")
        try:
            os.rename(private / "entry", entry)
        except OSError:
            if not entry.is_dir():  # not another process's copy arriving first
                raise
    finally:
        shutil.rmtree(private, ignore_errors=True)
    return read(entry), False
