"""The batch's report: --out/batch.json (for programs) and --out/batch.md (for people), written
at the end of a batch, also a cancelled one: per shot its status, attempts, time, metrics,
warnings and, for a failed shot, each attempt's error."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..formats.atomic import atomic_file
from .shot_file import BATCH_JSON, BATCH_MARKDOWN, Shot
from .shot_run import ShotOutcome

REPORT_SCHEMA = 1
STATUSES = ("done", "skipped", "failed", "cancelled")


def shot_entry(shot: Shot, outcome: ShotOutcome) -> dict[str, Any]:
    """One shot's row of batch.json."""
    settings = shot.settings
    entry = {"name": shot.name, "number": shot.number, "footage": str(settings.footage),
             "frames": settings.frames, "frame_count": shot.frame_count, "tracker": settings.tracker,
             "device": settings.device,
             "results": str(settings.out) if outcome.status in ("done", "skipped") else None}
    entry.update({k: v for k, v in asdict(outcome).items() if k != "name"})
    entry["wall_s"] = round(outcome.wall_s, 3)
    return entry


def batch_document(shot_file: Path, out: Path, engine: str, status: str, wall_s: float,
                   entries: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {name: sum(e["status"] == name for e in entries) for name in STATUSES}
    return {"schema": REPORT_SCHEMA, "shot_file": str(Path(shot_file).resolve()),
            "out": str(Path(out).resolve()), "engine": engine, "status": status,
            "wall_s": round(wall_s, 3), "counts": counts, "shots": entries}


def _markdown(document: dict[str, Any]) -> str:
    counts = ", ".join(f"{n} {s}" for s, n in document["counts"].items() if n)
    lines = [f"# Batch: {Path(document['shot_file']).name}", "",
             f"{document['status'].capitalize()} in {document['wall_s']:.1f} s on {document['engine']}: "
             f"{counts}.",
             "", "| shot | status | frames | tracker | attempts | wall s | landmark px | warnings |",
             "|---|---|---:|---|---:|---:|---:|---:|"]
    for e in document["shots"]:
        metrics = (e.get("result") or {}).get("metrics") or {}
        landmark = metrics.get("landmark_reprojection_px")
        landmark_text = "" if landmark is None else f"{landmark:.2f}"
        lines.append(f"| {e['name']} | {e['status']} | {e['frame_count']} | {e['tracker']} | {e['attempts']} | "
                     f"{e['wall_s']:.1f} | {landmark_text} | {len(e['warnings'])} |")
    failed = [e for e in document["shots"] if e["status"] == "failed"]
    if failed:
        lines += ["", "## Failed shots", ""]
        for e in failed:
            lines.append(f"- **{e['name']}** ({e['error_kind']}): {e['error']}")
            lines += [f"  - {error}" for error in e["attempt_errors"][:-1]]
    warned = [e for e in document["shots"] if e["warnings"]]
    if warned:
        lines += ["", "## Warnings", ""]
        lines += [f"- {e['name']}: {warning}" for e in warned for warning in e["warnings"]]
    return "\n".join(lines) + "\n"


def write_report(out: Path, document: dict[str, Any]) -> Path:
    """batch.json and batch.md into `out` (each replaced whole); returns batch.json's path."""
    path = Path(out) / BATCH_JSON
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(document, indent=1, allow_nan=False) + "\n")
    with atomic_file(Path(out) / BATCH_MARKDOWN) as tmp:
        tmp.write_text(_markdown(document))
    return path
