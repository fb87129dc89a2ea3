"""Where the shared test/benchmark data lives (FACEADAPT_DATA, default ../shared/data)."""

from __future__ import annotations

import os
from pathlib import Path

from .formats.errors import BadInput

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    return Path(os.environ.get("FACEADAPT_DATA", REPO_ROOT.parent / "shared" / "data"))


def data_file(relative: str) -> Path:
    """A file of the shared data, or BadInput saying where it was expected."""
    path = data_dir() / relative
    if not path.exists():
        raise BadInput(f"{path} not found: set FACEADAPT_DATA to the folder holding the shared "
                       "data (videos/, landmarks/, heads/)")
    return path
