"""Where stage caches live: FACEADAPT_CACHE, else ~/.cache/faceadapt (never in --out)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    return Path(os.environ.get("FACEADAPT_CACHE", Path.home() / ".cache" / "faceadapt"))
