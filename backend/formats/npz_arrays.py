"""Reading the arrays of an .npz file someone may have sent: never unpickling, and every
refusal naming the file and what to do (head files, results, clip files, suite scores)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .errors import BadInput


def read_npz(path: Path, what: str, required: tuple[str, ...], remedy: str) -> dict[str, np.ndarray]:
    """All arrays of the .npz at `path`, a `what` (e.g. "head file"); BadInput ending in
    `remedy` when it is missing, unreadable, holds pickled objects, or lacks a required field."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{what} {path} does not exist; {remedy}")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise BadInput(f"{what} {path} cannot be read as .npz ({exc}); {remedy}") from exc
    missing = [k for k in required if k not in arrays]
    if missing:
        raise BadInput(f"{what} {path} lacks field(s) {', '.join(missing)}; {remedy}")
    return arrays
