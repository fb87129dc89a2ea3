"""Where stage caches live: FACEADAPT_CACHE, else ~/.cache/faceadapt (never in --out).

Everything cached is disposable: a reader that cannot load an entry rebuilds it, and a cache
that cannot be written (a read-only folder on farm containers) means carrying on without one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


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
