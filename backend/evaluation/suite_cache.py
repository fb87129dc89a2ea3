"""The suite's cache: every kept result is keyed by what made it.

A key is a JSON object naming everything a result depends on: the method and its settings,
the code (a SHA-256 of the method's own modules and the pipeline modules it runs through:
suite_methods.py), the model files and package versions, the head's content and the clip's
content. An entry is reused only when the SHA-256 of its key equals the one it was stored
with, so a changed tracker, setting, model or clip never reports old numbers, and an edit to
code a method does not run re-runs nothing.

Entries are disposable (DESIGN.md): one that is missing, made for another key, or fails to
load is made again. Two kinds:
- a value entry: `PATH.json`, {"key", "digest", "value"}, written atomically once the value
  (and any file it refers to) is complete;
- a results directory made by `track`: the key goes in `FOLDER.made_by.json` beside it, written
  after the directory is complete and removed before it is made again.
Nothing here unpickles: entries are JSON, arrays npz read with allow_pickle=False.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from collections.abc import Callable, Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ..data_location import data_dir
from ..formats.atomic import atomic_file
from ..formats.errors import BadInput
from ..formats.head_file import HeadAsset
from ..formats.npz_arrays import read_npz
from ..formats.results_dir import read_results
from .code_closure import BACKEND_ROOT
from .suite_methods import Sources

MADE_BY_SUFFIX = ".made_by.json"
_CHUNK = 1 << 20

Value = TypeVar("Value")


def file_digest(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def files_digest(root: Path, paths: Iterable[Path]) -> str:
    """SHA-256 over each file's name relative to `root` and its bytes, in the given order
    (a renamed or moved file changes it as an edit does)."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).relative_to(root).as_posix().encode() + b"\0")
        digest.update(file_digest(path).encode())
    return digest.hexdigest()


def package_versions(modules: Iterable[str]) -> dict[str, str | None]:
    """Import name -> 'distribution==version' of the installed package (None when it is not
    installed), read from package metadata without importing it."""
    distributions = importlib.metadata.packages_distributions()
    versions: dict[str, str | None] = {}
    for module in modules:
        names = sorted(distributions.get(module, []))
        versions[module] = (", ".join(f"{n}=={importlib.metadata.version(n)}" for n in names)
                            if names else None)
    return versions


def sources_key(sources: Sources, root: Path = BACKEND_ROOT) -> dict[str, Any]:
    """The part of a key `sources` make: the digest of the code (files under `root`), model
    file digests and package versions."""
    models = {}
    for name in sources.data_files:
        path = data_dir() / name
        if not path.is_file():
            raise BadInput(f"{path} not found: set FACEADAPT_DATA to the folder holding the shared data")
        models[name] = file_digest(path)
    return {"code": files_digest(root, sources.code), "models": models,
            "packages": package_versions(sources.packages)}


def head_digest(head: HeadAsset) -> str:
    """SHA-256 of a head's content: every field's name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    for field in fields(head):
        value = getattr(head, field.name)
        digest.update(field.name.encode() + b"\0")
        if value is None:
            digest.update(b"none")
        elif isinstance(value, list):
            digest.update(json.dumps(value).encode())
        else:
            array = np.ascontiguousarray(value)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


def key_digest(key: dict[str, Any]) -> str:
    """SHA-256 of a key's canonical JSON (sorted keys): what an entry is stored with."""
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(document, indent=1) + "\n")


def _stored(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON document at `path` when it was stored for `key`; None when absent, unreadable or
    for another key."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict) or document.get("digest") != key_digest(key):
        return None
    return document


def cached_value(path: Path, key: dict[str, Any], make: Callable[[], Value],
                 check: Callable[[Value], None] | None = None) -> Value:
    """The value stored at `path` for `key`, or make() stored there when there is none.

    check(value) raising ValueError, KeyError or OSError (the value is malformed, or a file it
    refers to is missing or unreadable) counts as a failed load: the value is made again."""
    document = _stored(path, key)
    if document is not None and "value" in document:
        value = document["value"]
        try:
            if check is not None:
                check(value)
            return value
        except (ValueError, KeyError, OSError):
            pass
    value = make()
    _write_json(path, {"key": key, "digest": key_digest(key), "value": value})
    return value


def made_by_path(folder: Path) -> Path:
    return folder.with_name(folder.name + MADE_BY_SUFFIX)


def cached_results(folder: Path, key: dict[str, Any], make: Callable[[Path], None]) -> Path:
    """A results directory at `folder` made by what `key` names: kept when its made-by entry
    matches and it reads back, else made(folder) again (replacing it) and recorded."""
    made_by = made_by_path(folder)
    if _stored(made_by, key) is not None:
        try:
            read_results(folder)
            return folder
        except (BadInput, OSError, ValueError, KeyError):
            pass
    made_by.unlink(missing_ok=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    make(folder)
    _write_json(made_by, {"key": key, "digest": key_digest(key)})
    return folder


def load_arrays(path: Path, names: Iterable[str]) -> dict[str, np.ndarray]:
    """The arrays of an npz entry (never unpickled); ValueError when it is unreadable or lacks
    one of `names`."""
    try:
        return read_npz(path, "suite cache entry", tuple(names), "it is made again")
    except BadInput as exc:
        raise ValueError(exc.message) from exc
