"""The FaceAdapt results directories under a folder, for the add-on's results panel: what
they are, how much disk they take, and removing one, which only ever removes what FaceAdapt
wrote.

A results directory is recognised as the file-format core recognises it for `--overwrite`
(RESULTS_DIRECTORY: a result.json with a schema, only the entries the format names). Removal
checks more than that, as it deletes rather than replaces: every named entry of the right
kind (files a file, `textures` a folder) and `textures` holding only `<view>/NNNNNN.png`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..backend.formats.results_dir import RESULT_JSON, RESULTS_DIRECTORY, TEXTURES_DIR

_TEXTURE_FILE = re.compile(r"^\d{6}\.png$")  # results_dir.frame_label + .png


@dataclass(frozen=True)
class ResultsEntry:
    """One results directory: `size_bytes` of all its files; `frame_count` and `footage` (the
    source file's name) from result.json, None where it does not say; `modified` the
    directory's modification time (seconds since the epoch: it changes when an entry such as
    a baked texture view is added)."""

    path: Path
    name: str
    size_bytes: int
    frame_count: int | None
    footage: str | None
    modified: float


def list_results(folder: Path) -> list[ResultsEntry]:
    """The results directories directly under `folder`, newest first; anything else (other
    folders, files, temp directories of a run in progress) is left out. [] when `folder` does
    not exist."""
    folder = Path(folder)
    entries = []
    try:
        children = list(folder.iterdir())
    except OSError:
        return []
    for child in children:
        # Hidden names are temp directories being written (atomic.py's `.NAME.pidN...partial`):
        # their result.json may already be in place before they are renamed.
        if child.name.startswith(".") or RESULTS_DIRECTORY.foreign_to(child) is not None:
            continue
        try:
            document = json.loads((child / RESULT_JSON).read_text())
            entries.append(ResultsEntry(child, child.name, _tree_size(child),
                                        _frame_count(document), _footage(document),
                                        child.stat().st_mtime))
        except (OSError, ValueError):  # removed or rewritten while being listed
            continue
    return sorted(entries, key=lambda entry: (-entry.modified, entry.name))


def remove_results(path: Path) -> None:
    """Delete the results directory `path`; ValueError naming it and why for anything that is
    not one holding only what FaceAdapt writes (a user's file inside refuses the whole)."""
    path = Path(path)
    reason = RESULTS_DIRECTORY.foreign_to(path) or _foreign_content(path)
    if reason:
        raise ValueError(f"{path} is not removed: {reason}")
    # Renamed out of the way first, so the folder disappears from the listing at once and an
    # interrupted removal leaves a hidden temp, not a results directory with files missing.
    doomed = path.with_name(f".{path.name}.pid{os.getpid()}.removing.partial")
    path.rename(doomed)
    shutil.rmtree(doomed)


def human_size(size_bytes: int) -> str:
    """`512 B`, `1.5 KiB`, `23 MiB`, `1.2 GiB`: binary units, 2-3 significant digits."""
    value = float(size_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    if unit == "B":
        return f"{int(value)} B"
    return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"


def _tree_size(directory: Path) -> int:
    """Bytes of the files under `directory`; links are counted as themselves, not followed."""
    total = 0
    for root, folders, files in os.walk(directory):  # walk does not descend into linked folders
        linked_folders = [name for name in folders if os.path.islink(os.path.join(root, name))]
        for name in files + linked_folders:
            total += os.lstat(os.path.join(root, name)).st_size
    return total


def _frame_count(document: object) -> int | None:
    """Frames tracked: result.json's source.frame_range [first, last] (inclusive)."""
    source = document.get("source") if isinstance(document, dict) else None
    frame_range = source.get("frame_range") if isinstance(source, dict) else None
    if (isinstance(frame_range, list) and len(frame_range) == 2
            and all(isinstance(f, int) and not isinstance(f, bool) for f in frame_range)
            and frame_range[1] >= frame_range[0]):
        return frame_range[1] - frame_range[0] + 1
    return None


def _footage(document: object) -> str | None:
    """The source footage's file (or image folder) name from result.json's source.path."""
    source = document.get("source") if isinstance(document, dict) else None
    footage = source.get("path") if isinstance(source, dict) else None
    return Path(footage).name if isinstance(footage, str) and footage else None


def _foreign_content(path: Path) -> str | None:
    """Why the entries of a results directory are not all FaceAdapt's (None when they are):
    a link, a file where the format has a folder or the reverse, or anything in `textures`
    but view folders of per-frame PNGs."""
    for entry in path.iterdir():
        if entry.is_symlink():
            return f"{entry.name} is a link"
        if entry.name == TEXTURES_DIR:
            if not entry.is_dir():
                return f"{entry.name} is not a folder"
            reason = _foreign_texture_content(entry)
            if reason:
                return reason
        elif not entry.is_file():
            return f"{entry.name} is not a file"
    return None


def _foreign_texture_content(textures: Path) -> str | None:
    """`textures/` holds only view folders (hidden ones are bake-textures' temp views) of
    NNNNNN.png files."""
    for view in textures.iterdir():
        if view.is_symlink() or not view.is_dir():
            return f"{TEXTURES_DIR}/{view.name} is not a view folder"
        for image in view.iterdir():
            if image.is_symlink() or not image.is_file() or not _TEXTURE_FILE.match(image.name):
                return f"it holds {TEXTURES_DIR}/{view.name}/{image.name}, which FaceAdapt did not write"
    return None
