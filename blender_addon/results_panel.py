"""The results folders in the panel: each FaceAdapt results directory in the output folder
with its frames, footage and size, an Import button (onto the selected head) and a Remove
button (after a confirmation).

Panels redraw on every mouse move over them, and a listing walks every file to size it, so the
listing is kept for LISTING_SECONDS (and dropped at once when Remove Results deletes one).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .head_builder import selected_head
from .results_listing import ResultsEntry, human_size, list_results
from .scene_import import RESULTS_PROPERTY

LISTING_SECONDS = 2.0
_listings: dict[Path, tuple[float, list[ResultsEntry]]] = {}


def listed_results(folder: Path, now: float | None = None) -> list[ResultsEntry]:
    """results_listing.list_results(folder), reused for LISTING_SECONDS."""
    now = time.monotonic() if now is None else now
    folder = Path(folder)
    kept = _listings.get(folder)
    if kept is not None and now - kept[0] < LISTING_SECONDS:
        return kept[1]
    entries = list_results(folder)
    _listings[folder] = (now, entries)
    return entries


def forget_listing() -> None:
    """List afresh on the next draw (after a removal, or a new run's results)."""
    _listings.clear()


def describe(entry: ResultsEntry) -> str:
    """`120 frames · clip.mp4 · 23 MiB` (`?` for what result.json does not say)."""
    frames = f"{entry.frame_count} frames" if entry.frame_count is not None else "? frames"
    return f"{frames} · {entry.footage or '?'} · {human_size(entry.size_bytes)}"


def draw_results_folders(layout: Any, context: Any, folder: Path) -> None:
    """Draw the results directories in `folder` (backend_job.results_folder(context)) into
    `layout` (a bpy.types.UILayout): per directory its name (checked when it is the one
    imported onto the selected head), a line of details, Import and Remove."""
    entries = listed_results(folder)
    column = layout.column(align=True)
    if not entries:
        column.label(text=f"No results in {folder}", icon="INFO")
        return
    head = selected_head(context)
    imported = head.get(RESULTS_PROPERTY) if head is not None else None
    imported_path = Path(str(imported)).resolve() if imported else None
    for entry in entries:
        box = column.box()
        row = box.row(align=True)
        current = imported_path is not None and entry.path.resolve() == imported_path
        row.label(text=entry.name, icon="CHECKMARK" if current else "FILE_FOLDER")
        buttons = row.row(align=True)
        buttons.operator_context = "EXEC_DEFAULT"  # import this directory, no file browser
        settings = context.scene.faceadapt
        importer = buttons.operator("faceadapt.import_results", text="Import", icon="IMPORT")
        importer.directory = str(entry.path)
        importer.geometry, importer.setup_render = settings.geometry, settings.setup_render
        row.operator("faceadapt.remove_results", text="", icon="TRASH").directory = str(entry.path)
        box.label(text=describe(entry))
