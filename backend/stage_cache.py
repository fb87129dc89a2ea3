"""Cached stages of `track`: a re-run with other settings redoes only the stages whose inputs
changed (detections: detection_cache.py; the face-model trackers' crops, encoding,
adaptation and refinement: trackers/face_model_stages.py).

An entry is a folder `<cache>/stages/<stage>/<key>/`, its key the SHA-256 of everything its
content depends on (`stage_key`): the key of the stage before it, the settings, the code that
computes it (`code_digest`) and the packages it runs on. It is built in a private folder beside
it and renamed into place when complete, so a reader never sees half an entry, and two
processes building the same entry both finish (the second one's copy is discarded). Entries are
disposable (DESIGN.md): one that fails to load is deleted and built again; a cache that cannot
be written means building in the caller's temporary folder instead. Nothing is unpickled.

The stages folder is kept under a size limit (`FACEADAPT_STAGE_CACHE_GB`, default 20 GB; a
clip's crops take about 50 KB per frame): after a new entry is stored, the least recently used
entries beyond the limit are deleted (`prune_stages`; reusing an entry marks it used).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .cache import cache_dir, writable_cache_subdir
from .events import EventSink
from .formats.errors import BadInput

T = TypeVar("T")
BACKEND = Path(__file__).parent
LIMIT_VARIABLE = "FACEADAPT_STAGE_CACHE_GB"
DEFAULT_LIMIT_GB = 20.0
ENTRY_NAME = re.compile(r"[0-9a-f]{64}(\.npz)?")  # a key, as a folder or an .npz file
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


def cached_stage(stage: str, key: str | None, build: Callable[[Path], None], read: Callable[[Path], T],
                 fallback: Path, sink: EventSink) -> tuple[T, bool]:
    """(read(entry), whether it was reused) for the entry `key` of `stage` (a folder name
    under <cache>/stages/, its last part naming the stage in the log). An entry that is
    absent, or that `read` refuses (raising one of UNREADABLE), is made by build(folder) into an
    empty folder that does not exist yet, then read. Without a key (nothing to name the inputs
    by) or a writable cache, the entry is built at `fallback` (a folder of the caller's that must
    not exist yet, e.g. in its temp folder)."""
    root = None if key is None else writable_cache_subdir(f"stages/{stage}")
    name = stage.rsplit("/", 1)[-1]
    if key is None or root is None:
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
    prune_stages(entry, sink)
    return read(entry), False


def stage_cache_limit_bytes() -> int:
    """The stages folder's size limit ($FACEADAPT_STAGE_CACHE_GB gigabytes, default 20)."""
    text = os.environ.get(LIMIT_VARIABLE)
    try:
        gigabytes = DEFAULT_LIMIT_GB if text is None else float(text)
    except ValueError:
        gigabytes = -1.0
    if not gigabytes >= 0 or gigabytes == float("inf"):
        raise BadInput(f"${LIMIT_VARIABLE}={text!r}: give the stage cache's size limit in gigabytes, "
                       "a number of 0 or more (e.g. 20)")
    return int(gigabytes * 1e9)


def prune_stages(keep: Path, sink: EventSink) -> None:
    """Delete the least recently used entries of <cache>/stages/ until it fits the limit; never
    `keep` (the entry just stored). An entry another process still reads stays readable where it
    is open (POSIX), and one that vanishes before it is opened is rebuilt (UNREADABLE)."""
    limit = stage_cache_limit_bytes()
    root = cache_dir() / "stages"
    entries = []
    for path in root.rglob("*"):
        if ENTRY_NAME.fullmatch(path.name):
            try:
                files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
                entries.append((path.stat().st_mtime, sum(f.stat().st_size for f in files), path))
            except OSError:  # deleted meanwhile by another process
                continue
    total = sum(size for _, size, _ in entries)
    removed, freed = 0, 0
    for _, size, path in sorted(entries, key=lambda e: e[0]):
        if total <= limit:
            break
        if path == keep:
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        total, removed, freed = total - size, removed + 1, freed + size
    if removed:
        sink.log(f"stage cache: removed {removed} least recently used entr{'y' if removed == 1 else 'ies'} "
                 f"({freed / 1e6:.0f} MB) to stay within ${LIMIT_VARIABLE} = {limit / 1e9:g} GB")
