"""Where stage caches live: FACEADAPT_CACHE, else ~/.cache/faceadapt (never in --out).

Everything cached is disposable: a reader that cannot load an entry rebuilds it, and a cache
that cannot be written (a read-only folder on farm containers) means carrying on without one.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .formats.errors import BadInput

Built = TypeVar("Built")


def cache_dir() -> Path:
    return Path(os.environ.get("FACEADAPT_CACHE", Path.home() / ".cache" / "faceadapt"))


def writable_cache_subdir(name: str) -> Path | None:
    """<cache>/<name>, created; None when it cannot be created or written to (then the caller
    works without caching). Writability is probed by writing, since permission bits say
    nothing for root or on a read-only mount."""
    path = cache_dir() / name
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError:
        return None
    return path


def cached_build(path: Path, what: str, load: Callable[[Path], Built], build: Callable[[], Built],
                 save: Callable[[Built, Path], None]) -> Built:
    """`what` (e.g. "default head") from its cache entry at `path`, or built and cached there.
    An entry that does not load (BadInput: truncated, corrupt) is built again; an entry that
    cannot be written (a read-only cache on a farm) leaves the built one for this run. Both
    warn, naming `what`."""
    if path.is_file():
        try:
            return load(path)
        except BadInput as exc:
            warnings.warn(f"the cached {what} could not be loaded, building it again: {exc.message}",
                          RuntimeWarning, stacklevel=3)
    built = build()
    try:
        save(built, path)
    except OSError as exc:
        warnings.warn(f"the {what} is not cached: {path} cannot be written ({exc})", RuntimeWarning,
                      stacklevel=3)
    return built
