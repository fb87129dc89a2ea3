"""`personal-benchmark`: a personal face model against the default one on the actor's footage.

For each tracker that decodes a model (encoder, adapted) and each model (the default, the
personal one): track the frames (best: frames `personalize` did not see), then score what
real footage allows: the tracked landmarks against the independent detector (NME and jitter;
real_metrics.py, dlib), the clip's photometric error (a texture unwrapped from the clip
through the track), and the PSNR of the model's decoded view-dependent texture over the
frame's face region (decoded_texture_psnr.py): the figure a personal model should raise, since
the default model decodes another person's skin. Both image figures are over the pixels both
models' faces cover in each frame (face_coverage.py): the personal head is wider, and an error
over more pixels does not compare. A contact sheet per tracker (frames, the
default model's decoded render over them, the personal model's) goes beside the report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config_parser import option, positional, report_option, required
from ..dam.model_folder import load_model, load_model_head, resolve_model
from ..events import EventSink
from ..footage import Footage
from ..formats.atomic import atomic_file
from ..formats.errors import BadInput
from ..formats.results_dir import read_results
from .decoded_texture_psnr import decoded_texture_psnr, render_decoded_texture
from .face_coverage import coverages_of_others

SHEET_FRAMES = 4


@dataclass(frozen=True)
class PersonalBenchmarkConfig:
    footage: Path = positional("the actor's footage")
    model: str = required("the personal model: a name in your models folder or a model folder")
    out: Path = required("folder for the results, the report and the contact sheets (rewritten each run)")
    frames: str | None = option(None, "A-B, 0-based inclusive source frames to track (best: frames "
                                      "the model was not made from)")
    trackers: str = option("encoder,adapted", "comma-separated trackers that decode the model")
    json: Path | None = report_option()
    device: str = "cpu"


def personal_benchmark(config: PersonalBenchmarkConfig, sink: EventSink) -> dict:
    """Track and score with both models; returns the report (also written as report.md)."""
    from ..track import TrackSettings, run_track
    from ..trackers.registry import tracker_entry
    from .real_metrics import evaluate_real_clip

    trackers = [t.strip() for t in config.trackers.split(",") if t.strip()]
    for tracker in trackers:
        if not tracker_entry(tracker).needs_model:
            raise BadInput(f"--trackers: {tracker} does not decode a face model; use encoder, adapted "
                           "or latent-fit")
    models = {"default": resolve_model("default"), "personal": resolve_model(config.model)}
    heads = {label: load_model_head(folder) for label, folder in models.items()}
    rows = []
    for tracker in trackers:
        results, seconds = {}, {}
        for label, folder in models.items():
            results[label] = Path(config.out) / "results" / f"{tracker}-{label}"
            sink.log(f"tracking with {tracker} and the {label} model ({folder})")
            start = time.perf_counter()
            run_track(TrackSettings(footage=config.footage, out=results[label], frames=config.frames,
                                    model=str(folder), tracker=tracker, texture_size=0, overwrite=True,
                                    device=config.device), sink)
            seconds[label] = time.perf_counter() - start
        tracks = {label: read_results(folder).tracking for label, folder in results.items()}
        for label, folder in models.items():
            # The heads differ in width: the image figures are over the pixels both faces cover.
            others = coverages_of_others(tracks, heads, label)
            real = evaluate_real_clip(results[label], config.footage, heads[label], config.device, 1, sink,
                                      common_with=others)
            decoded = decoded_texture_psnr(tracks[label], config.footage, folder, heads[label], config.device,
                                           common_with=others)
            rows.append({"tracker": tracker, "model": label, "frames": real["frames_tracked"],
                         "nme_mean": real["agreement_nme_mean"],
                         "jitter_px": real["jitter_tracked_px"], "jitter_ratio": real["jitter_ratio"],
                         "photometric_rms_255": real["photometric_rms_255"],
                         "decoded_texture_psnr_db": decoded["psnr_db"],
                         "track_seconds": round(seconds[label], 1)})
        model_contact_sheet(config.footage, {label: Path(config.out) / "results" / f"{tracker}-{label}"
                                             for label in models}, models,
                            Path(config.out) / f"sheet-{tracker}.png")
    report = {"footage": str(config.footage), "frames": config.frames, "model": str(models["personal"]),
              "rows": rows}
    with atomic_file(Path(config.out) / "report.md") as tmp:
        tmp.write_text(report_table(report))
    print(report_table(report))
    return report


def report_table(report: dict) -> str:
    header = ("tracker", "model", "frames", "NME", "jitter px", "photometric RMS", "decoded PSNR dB")
    lines = [f"personal-benchmark on {report['footage']} frames {report['frames'] or 'all'}, "
             f"personal model {report['model']}", "",
             "Photometric RMS and decoded PSNR over the face pixels both models' heads cover.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in report["rows"]:
        cells = (row["tracker"], row["model"], str(row["frames"]), _figure(row["nme_mean"], 4),
                 _figure(row["jitter_px"], 2), _figure(row["photometric_rms_255"], 2),
                 _figure(row["decoded_texture_psnr_db"], 2))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _figure(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def model_contact_sheet(footage: Path, results: dict[str, Path], models: dict[str, Path],
                        path: Path) -> None:
    """A PNG of SHEET_FRAMES rows: the frame, then per model (in `models`' order, each tracked
    into the `results` folder of the same label, over the same frames) its decoded texture
    rendered over the frame."""
    import cv2

    tracks = {label: read_results(results[label]).tracking for label in models}
    loaded = {label: (load_model(folder)[0], load_model_head(folder)) for label, folder in models.items()}
    frames = next(iter(tracks.values()))["frames"]
    rows_wanted = np.linspace(0, len(frames) - 1, min(SHEET_FRAMES, len(frames))).round().astype(int)
    wanted = {int(frames[r]): int(r) for r in rows_wanted}
    sheet_rows = []
    for index, image in Footage(footage).frames(int(frames[0]), int(frames[-1])):
        row = wanted.get(int(index))
        if row is None:
            continue
        panels = [image]
        for label in models:
            model, head = loaded[label]
            render = render_decoded_texture(model, head, tracks[label], row, *image.shape[:2])
            over = image.copy()
            mesh = render.mesh.cpu().numpy()
            over[mesh] = (render.image.cpu().numpy()[mesh] * 255).round().astype(np.uint8)
            panels.append(over)
        sheet_rows.append(np.concatenate(panels, axis=1))
    sheet = np.concatenate(sheet_rows, axis=0)
    scale = min(1.0, 1800 / sheet.shape[1])
    sheet = cv2.resize(sheet, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), sheet[..., ::-1])
