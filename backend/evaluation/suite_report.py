"""The evaluation suite's report: JSON, markdown tables, plots and contact sheets.

`write_report(document, json_path, sink)` writes, each atomically and next to `json_path`
(stem S):
- `S.json`: the document, NaN and inf written as null (JSON has neither);
- `S_vertex_error_over_frames.png`: vertex error per frame of every method, one panel per
  ground-truth clip (from the per-frame scores suite.py keeps under work/scores), the reference
  rows dashed in greys;
- `S_vertex_error_heatmap.png`: each method's (and reference row's) per-vertex error, averaged
  over a head's ground-truth clips, coloured on that neutral head seen from the front (rows
  heads, columns references then methods, one colour range for all);
- `S_sheet_<clip>.jpg` per ground-truth clip: its contact sheet (below);
- `S.md`: header, clip, method and reference lists, one table per clip kind (per clip and mean
  rows; on ground-truth clips the reference rows, labelled "NAME (reference)", come first in
  each clip's rows), links to the images, and the folder of the real clips' sheets (unlinked).

A contact sheet shows 4 evenly spaced tracked frames of a clip: the footage, each method's
tracked mesh drawn over it, and for a method whose results hold DAM latent codes (a face-model
tracker) the texture decoded for the frame's view rendered through the tracked mesh over the
frame (decoded_texture_psnr.render_decoded_texture, the render the PSNR column scores).
Real clips get sheets too, for the person running the suite, but only in the work folder
(`work/sheets/<clip>.jpg`; the default work folder, under out/, is ignored by git), never
beside the report: that footage may never be committed or shown. The annotated photos get none.

The document's `references` (yardsticks.py: the neutral head and the oracles) have the layout of
its `methods`, their per-frame scores under work/scores/references/<name>/; they are rows of the
ground-truth tables and plots only, never of the contact sheets (they track no footage).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..data_location import data_dir
from ..events import EventSink
from ..formats.atomic import atomic_file
from ..formats.camera import centred_intrinsics, head_to_camera
from .clip_making import FOOTAGE, HEAD

if TYPE_CHECKING:  # torch and the DAM load only when a sheet is drawn
    from ..dam.model import DeepAppearanceModel
    from ..formats.head_file import HeadAsset
    from ..formats.results_dir import Results

# Per-frame scores of the reference rows live under work/scores/REFERENCE_SCORES/<name>/.
REFERENCE_SCORES = "references"
REFERENCE_SUFFIX = " (reference)"  # a reference row's label: "neutral (reference)"
REFERENCE_STYLES = (("0.15", "--"), ("0.5", "--"), ("0.3", ":"), ("0.65", ":"))  # colour, line
# A table column: (metrics key, header, str.format spec for its value).
Column = tuple[str, str, str]

TRUTH_COLUMNS: tuple[Column, ...] = (
    ("vertex_mm_mean", "vertex mm", "{:.2f}"),
    ("vertex_mm_p95", "vertex p95 mm", "{:.2f}"),
    ("rotation_deg_mean", "rotation °", "{:.2f}"),
    ("landmark_px_mean", "landmark px", "{:.2f}"),
    ("landmark_nme", "landmark NME", "{:.4f}"),
    ("jitter_px", "jitter px", "{:.3f}"),
    ("truth_jitter_px", "truth jitter px", "{:.3f}"),
    ("decoded_texture_psnr_db", "decoded texture PSNR dB", "{:.2f}"),
    ("fraction_tracked", "tracked", "{:.1%}"),
    ("frames", "frames scored", "{:.0f}"),
    ("frames_untracked", "untracked", "{:.0f}"),
    ("frames_missing", "missing", "{:.0f}"),
    ("track_seconds", "track s", "{:.1f}"),
)
# Keys of backend.evaluation.real_metrics.evaluate_real_clip (plus suite.py's track_seconds).
REAL_COLUMNS: tuple[Column, ...] = (
    ("agreement_nme_mean", "NME vs ref.", "{:.4f}"),
    ("agreement_px_mean", "px vs ref.", "{:.2f}"),
    ("detections_nme_mean", "detections NME vs ref.", "{:.4f}"),
    ("jitter_tracked_px", "jitter px", "{:.3f}"),
    ("jitter_reference_px", "ref. jitter px", "{:.3f}"),
    ("jitter_ratio", "jitter / ref.", "{:.2f}"),
    ("photometric_rms_255", "photometric RMS", "{:.2f}"),
    ("fraction_tracked", "tracked", "{:.1%}"),
    ("frames", "frames", "{:.0f}"),
    ("agreement_frames_used", "frames vs ref.", "{:.0f}"),
    ("track_seconds", "track s", "{:.1f}"),
)
KIND_COLUMNS = {"truth": TRUTH_COLUMNS, "real": REAL_COLUMNS}
KIND_TITLES = {"truth": "Ground-truth clips: metrics", "real": "Real clips: metrics (no ground truth)"}
KIND_NOTES = {
    "truth": "Vertex error over the face region in head space (mm), head rotation error, fitted "
             "landmarks against the true projected ones (px, and NME over the inter-ocular "
             "distance), jitter = mean second difference of the fitted landmarks (the truth's "
             "own jitter is the real motion's share). Means are over scored frames; untracked "
             "and missing frames are counted, never scored. Reference rows (\"(reference)\") "
             "are posed by the true pose, so their rotation error is 0 and their landmark error "
             "is the expression's alone; their \"track s\" is the seconds computing them.",
    "real": "Fitted landmarks against an independent reference detector no tracker uses "
            "(dlib's 68-point predictor; NME over its inter-ocular distance, and px), the "
            "tracker's input detections against the same reference, jitter of the fitted and "
            "of the reference landmarks over the same frames and their ratio, RMS colour error "
            "(0-255) of the re-rendered track after one colour fit per clip (compares methods, "
            "not an absolute quality).",
}
MISSING = "–"
SHEET_ROWS = 4
SHEET_TILE_WIDTH = 320  # px: clips are 160-320 px wide; one size keeps sheets comparable
SHEET_LABEL_HEIGHT = 28  # px band above the tiles for the column names
DECODED_TITLE = "{}: decoded texture"  # sheet column of a method's decoded texture over the frame
# Real clips' contact sheets: work/REAL_SHEETS/<clip>.jpg, out of the committed report's folder.
REAL_SHEETS = "sheets"
HEATMAP_SIZE = 512  # px, square render per head and method
HEATMAP_FILL = 0.85  # fraction of the render the face region's bounding box spans
HEATMAP_FOCAL = 4.0  # focal length in image widths: a long lens, so the shape is barely distorted
HEATMAP_CMAP = "viridis"  # its low end stays lighter than magma's black, so shading reads
NO_DATA_GREY = 0.6  # colour of vertices without a score (off the face region)
BACKGROUND = 1.0  # white behind the heads
HEATMAP_LIGHT = (0.4, 0.5, 1.0)  # camera space, from the upper left: the shape reads
HEATMAP_AMBIENT = 0.45


def json_safe(value: Any) -> Any:
    """`value` with every non-finite float (NaN, inf) replaced by None, recursively; numpy
    scalars and arrays become Python numbers and lists (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _number(value: Any) -> float | None:
    """A finite number, or None for None, NaN, inf and non-numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def format_value(value: Any, spec: str) -> str:
    """A table cell: `value` formatted with `spec`; None and NaN show as MISSING, values the
    spec cannot format (a string where a number was expected) as their text."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    try:
        return spec.format(value)
    except (ValueError, TypeError):
        return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], labels: int) -> list[str]:
    """Markdown table lines; the columns after the first `labels` (the figures) right-aligned."""
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |",
             "|" + "|".join("---" if i < labels else "---:" for i in range(len(headers))) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def clips_of_kind(document: dict, kind: str) -> list[dict]:
    return [clip for clip in document.get("clips", []) if clip.get("kind") == kind]


def scored_rows(document: dict, kind: str = "truth") -> list[dict]:
    """The rows of a clip kind's table and plots, each {"label", "clips" (name -> metrics),
    "scores" (its folder under work/scores), "reference" (bool)}: on ground-truth clips the
    reference rows first, labelled NAME + REFERENCE_SUFFIX, then the methods; on other kinds
    the methods alone."""
    rows = []
    if kind == "truth":
        for entry in document.get("references", []):
            name = str(entry.get("name"))
            rows.append({"label": name + REFERENCE_SUFFIX, "clips": entry.get("clips", {}),
                         "scores": f"{REFERENCE_SCORES}/{name}", "reference": True})
    for entry in document.get("methods", []):
        name = str(entry.get("name"))
        rows.append({"label": name, "clips": entry.get("clips", {}), "scores": name,
                     "reference": False})
    return rows


def metrics_table(document: dict, kind: str, columns: Sequence[Column]) -> list[str]:
    """Markdown lines of a (clip, method) x metrics table for the clips of `kind`, then one
    mean row per method (scored_rows: on ground-truth clips the reference rows too).

    Every method gets a row for every clip, all MISSING when it has no metrics for that clip.
    Mean rows skip missing values (None, NaN, absent keys); a mean over fewer than all the
    kind's clips says over how many ("0.12 (3/4)")."""
    clips = clips_of_kind(document, kind)
    methods = scored_rows(document, kind)
    rows = []
    for clip in clips:
        for method in methods:
            metrics = method["clips"].get(clip.get("name")) or {}
            rows.append([str(clip.get("name")), method["label"],
                         *(format_value(metrics.get(key), spec) for key, _, spec in columns)])
    for method in methods:
        per_clip = [method["clips"].get(clip.get("name")) or {} for clip in clips]
        cells = []
        for key, _, spec in columns:
            values = [v for v in (_number(m.get(key)) for m in per_clip) if v is not None]
            text = format_value(float(np.mean(values)) if values else None, spec)
            if values and len(values) < len(clips):
                text += f" ({len(values)}/{len(clips)})"
            cells.append(text)
        plural = "clip" if len(clips) == 1 else "clips"
        rows.append([f"**mean ({len(clips)} {plural})**", method["label"], *cells])
    return _table(["clip", "method", *(header for _, header, _ in columns)], rows, 2)


def photos_table(document: dict, photos_clip: dict) -> list[str]:
    """Markdown lines of one row per method: NME mean over the tracked photos, photos tracked,
    and each photo's NME ("untracked" where the method found no face)."""
    methods = document.get("methods", [])
    name = photos_clip.get("name")
    names = list(photos_clip.get("photos", []))
    for method in methods:
        per_photo = method.get("clips", {}).get(name, {}).get("per_photo_nme") or {}
        names += [photo for photo in per_photo if photo not in names]
    rows = []
    for method in methods:
        metrics = method.get("clips", {}).get(name, {})
        per_photo = metrics.get("per_photo_nme") or {}
        tracked, total = metrics.get("photos_tracked"), metrics.get("photos")
        count = MISSING if tracked is None or total is None else f"{tracked} / {total}"
        cells = []
        for photo in names:
            if photo not in per_photo:
                cells.append(MISSING)
            else:
                cells.append("untracked" if per_photo[photo] is None
                             else format_value(per_photo[photo], "{:.4f}"))
        rows.append([str(method.get("name")), format_value(metrics.get("nme_mean"), "{:.4f}"), count,
                     *cells])
    return _table(["method", "NME mean", "photos tracked", *names], rows, 1)


def _domain_row(clip: dict) -> list[str]:
    domain = clip.get("domain") or {}
    lens = domain.get("lens_mm")
    size = (f"{domain['width']}x{domain['height']}" if "width" in domain and "height" in domain
            else MISSING)
    performance = str(clip.get("performance", MISSING))
    if clip.get("yaw_deg") is not None:
        performance += f", yaw to ±{clip['yaw_deg']:g}°"
    return [str(clip.get("name")), str(clip.get("head", MISSING)), performance,
            format_value(clip.get("frames"), "{}"), format_value(domain.get("light"), "{}"),
            format_value(domain.get("background"), "{}"),
            "default (0.62 m)" if "lens_mm" in domain and lens is None else format_value(lens, "{:g}"),
            format_value(domain.get("motion_blur"), "{:g}"), format_value(domain.get("blur_px"), "{:g}"),
            format_value(domain.get("noise"), "{:g}"), format_value(domain.get("crf"), "{}"), size,
            format_value(domain.get("samples"), "{}"), format_value(domain.get("occluder"), "{}")]


def markdown_report(document: dict, images: Sequence[Path], real_sheets: Path | None = None) -> str:
    """The markdown report of a suite document; `images` (written next to it) are linked by
    name; `real_sheets`, the folder of the real clips' contact sheets, is named but never
    linked (those stay with whoever ran the suite). Date-free, so that reruns diff only where
    results changed."""
    machine = document.get("machine", {})
    memory = document.get("peak_memory_mib", {})
    lines = [
        "# FaceAdapt evaluation suite",
        "",
        f"Command: `{document.get('command', MISSING)}`",
        "",
        f"- machine: {machine.get('platform', MISSING)}, {machine.get('threads', MISSING)} threads, "
        f"device {machine.get('device', MISSING)}",
        f"- total {format_value(document.get('seconds'), '{:.1f}')} s (making clips "
        f"{format_value(document.get('clip_making_seconds'), '{:.1f}')} s)",
        "- peak memory: " + (", ".join(f"{k} {format_value(v, '{:.0f}')} MiB" for k, v in memory.items())
                             or MISSING),
        "",
        "## Methods",
        "",
        *(f"- **{m.get('name')}**: {m.get('description', '')}" for m in document.get("methods", [])),
        "",
    ]
    if document.get("references"):
        lines += ["## Reference rows (ground-truth clips)", "",
                  "Not trackers: yardsticks computed from the truth itself (backend/evaluation/"
                  "yardsticks.py), scored by the same metrics. A tracker's vertex error belongs "
                  "below neutral, and at best the DAM oracle's; the landmark and detection oracles "
                  "(the true pose, the latent fitted to the true or to the detected landmarks) say "
                  "what landmarks allow, and what the detector costs.", "",
                  *(f"- **{r.get('name')}{REFERENCE_SUFFIX}**: {r.get('description', '')}"
                    for r in document["references"]), ""]
    truth = clips_of_kind(document, "truth")
    if truth:
        lines += ["## Ground-truth clips: domains (rendered with Cycles)", "",
                  *_table(["clip", "head", "performance", "frames", "light", "background", "lens mm",
                           "motion blur", "lens blur px", "noise", "crf", "size", "samples", "occluder"],
                          [_domain_row(clip) for clip in truth], 14), ""]
    for kind, columns in KIND_COLUMNS.items():
        if clips_of_kind(document, kind):
            lines += [f"## {KIND_TITLES[kind]}", "", KIND_NOTES[kind], "",
                      *metrics_table(document, kind, columns), ""]
    for clip in clips_of_kind(document, "photos"):
        lines += [f"## Annotated photos ({clip.get('name')})", "",
                  "NME of the fitted landmarks against the human annotation (68 points, "
                  "inter-ocular), mean over the photos the method tracked.", "",
                  *photos_table(document, clip), ""]
    tabulated = {*KIND_COLUMNS, "photos"}
    for kind in sorted({str(c.get("kind")) for c in document.get("clips", [])} - tabulated):
        names = ", ".join(str(c.get("name")) for c in clips_of_kind(document, kind))
        lines += [f"Clips of kind '{kind}' have no table layout: {names}", ""]
    if images:
        lines += ["## Images (ground-truth clips only)", "",
                  *(f"![{image.stem}]({image.name})" for image in images), ""]
    if real_sheets is not None:
        lines += ["## Real clips: contact sheets", "",
                  f"In the suite's work folder, `{real_sheets}/<clip>.jpg`, for whoever ran it: "
                  "real footage is never committed or shown, so they are not linked here.", ""]
    return "\n".join(lines)


def _scores(work: Path, method: str, clip: str) -> dict[str, np.ndarray] | None:
    """The per-frame / per-vertex arrays suite.py saved for (method, clip), or None. method:
    the row's folder under work/scores (scored_rows' "scores")."""
    path = work / "scores" / method / f"{clip}.npz"
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def _save_figure(figure: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_file(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)


def plot_error_over_frames(document: dict, path: Path, sink: EventSink) -> bool:
    """Vertex error (mm) per frame of every method, one panel per ground-truth clip, to `path`.
    Returns False (nothing written) without a single saved score."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    work = Path(document.get("work", "."))
    clips = clips_of_kind(document, "truth")
    lines = scored_rows(document, "truth")
    methods = [row["label"] for row in lines]
    styles = _line_styles(lines)
    if not clips or not methods:
        return False
    columns = min(3, len(clips))
    rows = math.ceil(len(clips) / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.2 * rows), squeeze=False)
    plotted: set[str] = set()
    for axis, clip in zip(axes.flat, clips, strict=False):
        for row, method in zip(lines, methods, strict=True):
            scores = _scores(work, row["scores"], str(clip.get("name")))
            if scores is None:
                if row["reference"] and clip.get("name") not in row["clips"]:
                    continue  # a reference that does not apply to this clip (the oracle on ICT)
                sink.warning(f"report: no per-frame scores of {method} on {clip.get('name')} "
                             f"(work/scores/{row['scores']}/{clip.get('name')}.npz); left out of the plot")
                continue
            # One colour per method in every panel, whichever methods a panel lacks.
            colour, line = styles[method]
            axis.plot(scores["frames"], scores["vertex_mm_per_frame"], color=colour, linestyle=line,
                      linewidth=1.2)
            plotted.add(method)
        axis.set_title(str(clip.get("name")), fontsize=10)
        axis.set_xlabel("frame")
        axis.set_ylabel("vertex error (mm)")
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
    for axis in axes.flat[len(clips):]:
        axis.set_visible(False)
    if not plotted:
        plt.close(figure)
        return False
    labels = [method for method in methods if method in plotted]
    handles = [Line2D([], [], color=styles[method][0], linestyle=styles[method][1]) for method in labels]
    figure.legend(handles, labels, loc="upper center", ncol=len(labels), frameon=False)
    figure.tight_layout(rect=(0, 0, 1, 0.93))
    _save_figure(figure, path)
    return True


def _line_styles(rows: Sequence[dict]) -> dict[str, tuple[str, str]]:
    """Row label -> (matplotlib colour, line style): methods C0, C1... solid in their order,
    reference rows greys, dashed or dotted."""
    styles, methods, references = {}, 0, 0
    for row in rows:
        if row["reference"]:
            styles[row["label"]] = REFERENCE_STYLES[references % len(REFERENCE_STYLES)]
            references += 1
        else:
            styles[row["label"]] = (f"C{methods % 10}", "-")
            methods += 1
    return styles


def front_camera(points: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A square camera in front of a face (head space: metres, +Z up, face toward -Y) whose
    image `size` px wide the points' bounding box fills to HEATMAP_FILL.

    points: (N, 3) head space. Returns rotation (3, 3) and translation (3,) head -> OpenCV
    camera (x right, y down, z forward = +Y world), and intrinsics (3, 3) pixels.
    """
    rotation = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    low, high = points.min(0), points.max(0)
    centre = (low + high) / 2
    extent = max(high[0] - low[0], high[2] - low[2], 1e-6)
    focal = HEATMAP_FOCAL * size
    # Distance from the camera to the box's front plane, so the box spans HEATMAP_FILL there
    # (the face recedes behind it, so the rest only gets smaller).
    distance = focal * extent / (HEATMAP_FILL * size)
    eye = np.array([centre[0], low[1] - distance, centre[2]])
    translation = -rotation @ eye
    intrinsics = centred_intrinsics(focal, size, size).astype(np.float64)
    return rotation, translation, intrinsics


def heatmap_image(vertices: np.ndarray, faces: np.ndarray, colours: np.ndarray,
                  rotation: np.ndarray, translation: np.ndarray, intrinsics: np.ndarray,
                  size: int) -> np.ndarray:
    """(size, size, 3) float image in [0, 1]: the mesh with per-vertex colours, Lambert-shaded
    by a light from the camera's upper left (so the shape reads), BACKGROUND off the mesh.

    vertices: (V, 3) head space metres; faces: (T, 3); colours: (V, 3) in [0, 1]; rotation,
    translation: head -> OpenCV camera; intrinsics: (3, 3) pixels.
    """
    import torch

    from ..render.shading import render_vertex_colours

    camera = torch.as_tensor(vertices @ rotation.T + translation, dtype=torch.float32)[None]
    with torch.no_grad():
        shaded, fragments = render_vertex_colours(camera, torch.as_tensor(faces, dtype=torch.int64),
                                                  torch.as_tensor(colours, dtype=torch.float32),
                                                  torch.as_tensor(intrinsics, dtype=torch.float32),
                                                  size, size, light_dir=HEATMAP_LIGHT, ambient=HEATMAP_AMBIENT)
        image = torch.where(fragments.mask[..., None], shaded, torch.full_like(shaded, BACKGROUND))
    return image[0].clamp(0, 1).numpy()


def _mean_per_vertex(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """(V,) mean over clips of per-vertex errors, skipping NaN; NaN where no clip scored the
    vertex. arrays: (V,) each."""
    stacked = np.stack(arrays)
    scored = np.isfinite(stacked)
    count = scored.sum(0)
    total = np.where(scored, stacked, 0.0).sum(0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def plot_error_heatmap(document: dict, path: Path, sink: EventSink) -> bool:
    """Per-vertex error on the neutral head, rows heads, columns methods, to `path`: each
    method's mean over the head's ground-truth clips, one colour range 0..max for all panels
    (the max over the methods' panels when there are any: the neutral reference's jaw error,
    several times a tracker's, would leave every tracker's panel dark; larger values saturate).
    Returns False (nothing written) without a head and a score to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    from ..formats.errors import BadInput
    from ..formats.head_file import load_head

    work = Path(document.get("work", "."))
    rows = scored_rows(document, "truth")
    methods = [row["label"] for row in rows]
    folders = {row["label"]: row["scores"] for row in rows}
    by_head: dict[str, list[dict]] = {}
    for clip in clips_of_kind(document, "truth"):
        by_head.setdefault(str(clip.get("head")), []).append(clip)
    panels: dict[str, tuple[Any, dict[str, np.ndarray | None]]] = {}
    for head_name, clips in by_head.items():
        head = None
        for clip in clips:
            try:
                head = load_head(Path(clip.get("folder", "")) / HEAD)
                break
            except BadInput as exc:
                sink.warning(f"report: head of {clip.get('name')} unreadable ({exc})")
        if head is None:
            continue
        per_method: dict[str, np.ndarray | None] = {}
        for method in methods:
            arrays = []
            for clip in clips:
                scores = _scores(work, folders[method], str(clip.get("name")))
                if scores is None:
                    continue  # reported by the per-frame plot
                if scores["vertex_mm_per_vertex"].shape != (head.num_vertices,):
                    sink.warning(f"report: per-vertex scores of {method} on {clip.get('name')} have "
                                 f"{scores['vertex_mm_per_vertex'].shape} values, the head "
                                 f"{head.num_vertices} vertices; left out of the heat map")
                    continue
                arrays.append(scores["vertex_mm_per_vertex"])
            per_method[method] = _mean_per_vertex(arrays) if arrays else None
        panels[head_name] = (head, per_method)
    references = {row["label"] for row in rows if row["reference"]}

    def finite_values(kinds: set[bool]) -> list[np.ndarray]:
        values = [a[np.isfinite(a)] for _, per in panels.values() for method, a in per.items()
                  if a is not None and (method in references) in kinds]
        return [a for a in values if a.size]

    finite = finite_values({True, False})
    if not finite or not methods:
        return False
    scale = finite_values({False}) or finite
    vmax = max(float(a.max()) for a in scale) or 1.0
    norm, cmap = Normalize(0.0, vmax), matplotlib.colormaps[HEATMAP_CMAP]
    figure, axes = plt.subplots(len(panels), len(methods), squeeze=False,
                                figsize=(3.6 * len(methods) + 1.2, 3.6 * len(panels)))
    for row, (head_name, (head, per_method)) in enumerate(panels.items()):
        rotation, translation, intrinsics = front_camera(head.vertices[head.face_region], HEATMAP_SIZE)
        for col, method in enumerate(methods):
            axis = axes[row, col]
            errors = per_method[method]
            if errors is None:
                errors = np.full(head.num_vertices, np.nan)
                axis.text(0.5, 0.04, "not applicable" if method in references else "no scores",
                          transform=axis.transAxes, ha="center")
            colours = np.where(np.isfinite(errors)[:, None], cmap(norm(np.nan_to_num(errors)))[:, :3],
                               NO_DATA_GREY)
            axis.imshow(heatmap_image(head.vertices, head.faces, colours, rotation, translation,
                                      intrinsics, HEATMAP_SIZE))
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(method, fontsize=10)
            if col == 0:
                axis.set_ylabel(f"head: {head_name}")
    figure.colorbar(ScalarMappable(norm, cmap), ax=axes, label="mean vertex error (mm); grey: not scored",
                    shrink=0.8, extend="max" if max(float(a.max()) for a in finite) > vmax else "neither")
    _save_figure(figure, path)
    return True


def _label(image: np.ndarray, text: str, origin: tuple[int, int], scale: float = 0.5) -> None:
    """Text drawn in place, white with a dark outline so it reads on any frame."""
    import cv2

    for colour, thickness in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)


def _tile(image: np.ndarray) -> np.ndarray:
    """(h, SHEET_TILE_WIDTH, 3) uint8: `image` (H, W, 3) scaled to the sheet's tile width."""
    import cv2

    height = round(image.shape[0] * SHEET_TILE_WIDTH / image.shape[1])
    return cv2.resize(image, (SHEET_TILE_WIDTH, height), interpolation=cv2.INTER_AREA
                      if image.shape[1] > SHEET_TILE_WIDTH else cv2.INTER_LINEAR)


def sheet_frames(frame_count: int, rows: int = SHEET_ROWS) -> list[int]:
    """`rows` evenly spaced frame indices from first to last (fewer for shorter clips)."""
    return sorted({round(i) for i in np.linspace(0, frame_count - 1, rows)})


def clip_footage(clip: dict) -> Path:
    """The footage of a report clip: a ground-truth clip's in its folder, a real clip's in
    FACEADAPT_DATA/videos (where suite.real_videos finds it)."""
    if clip.get("kind") == "real":
        return data_dir() / "videos" / str(clip.get("file"))
    return Path(clip.get("folder", "")) / FOOTAGE


class SheetResults(NamedTuple):
    """A method's results on a clip, as its contact sheet columns draw them."""

    tracking: dict[str, np.ndarray]
    faces: np.ndarray  # (T, 3) of mesh.npz
    # The DAM decoding the results' latent codes and its head; None without codes to decode.
    decoder: tuple[DeepAppearanceModel, HeadAsset] | None


def results_decoder(results: Results, label: str, sink: EventSink
                    ) -> tuple[DeepAppearanceModel, HeadAsset] | None:
    """The DAM (on the CPU) and head that decode the results' latent codes: the model folder
    result.json records, chosen as bake-textures chooses it. None for results without codes
    (trackers that are no face model), and, with a warning naming `label`, where that model
    is unreadable or not the one the codes belong to."""
    from ..dam.model_folder import load_model, load_model_head
    from ..formats.errors import BadInput
    from ..texture_baking import bake_model_folder

    latent = results.tracking.get("latent")
    if latent is None:
        return None
    try:
        folder = bake_model_folder(results, None, sink)
        model, _ = load_model(folder)
        head = load_model_head(folder)
    except BadInput as exc:
        sink.warning(f"report: no decoded texture of {label} ({exc})")
        return None
    if (head.topology_hash != results.topology_hash or head.num_vertices != results.vertices.shape[1]
            or latent.shape[1] != model.config.latent):
        sink.warning(f"report: no decoded texture of {label}: the model {folder} ({head.num_vertices} "
                     f"vertices, latent {model.config.latent}) is not the one its results were "
                     f"tracked with ({results.vertices.shape[1]} vertices, latent {latent.shape[1]})")
        return None
    return model, head


def _note_tile(image: np.ndarray, note: str) -> np.ndarray:
    """A tile of the darkened frame with `note`, where a column has nothing to draw."""
    tile = _tile((image // 3).astype(np.uint8))
    _label(tile, note, (6, 18))
    return tile


def decoded_over_frame(image: np.ndarray, model: DeepAppearanceModel, head: HeadAsset,
                       tracking: dict[str, np.ndarray], row: int) -> np.ndarray:
    """(H, W, 3) uint8: `image` with tracking row `row`'s decoded texture rendered through its
    tracked mesh drawn opaque over it, so its seams with the frame show the fit."""
    from .decoded_texture_psnr import render_decoded_texture

    render = render_decoded_texture(model, head, tracking, row, *image.shape[:2])
    decoded = (render.image.cpu().numpy() * 255).round()
    return np.where(render.mesh.cpu().numpy()[..., None], decoded, image).astype(np.uint8)


def contact_sheet(clip: dict, methods: Sequence[str], work: Path, sink: EventSink) -> np.ndarray | None:
    """(H, W, 3) uint8 RGB sheet of a ground-truth or real clip: SHEET_ROWS of its tracked
    frames (rows) x the footage, each method's tracked mesh over the frame and, for a method
    whose results hold latent codes, the decoded texture over the frame (columns), labelled;
    None without footage.

    A method without results, or that did not track a frame, gets the darkened frame and a
    note instead of a drawing."""
    from ..footage import Footage
    from ..formats.errors import BadInput
    from ..formats.results_dir import read_results
    from ..preview import overlay_frame

    name = str(clip.get("name"))
    try:
        footage = Footage(clip_footage(clip))
    except BadInput as exc:
        sink.warning(f"report: no contact sheet of {name}: {exc}")
        return None
    count = footage.info.frame_count
    tracked = clip.get("frames")
    if isinstance(tracked, int) and tracked > 0:
        count = min(count, tracked)  # a real clip is tracked on its first frames only
    wanted = sheet_frames(count)
    results: dict[str, SheetResults | None] = {}
    titles = ["footage"]
    for method in methods:
        titles.append(method)
        try:
            read = read_results(work / "results" / method / name)
        except (BadInput, OSError) as exc:
            sink.warning(f"report: {method} results of {name} unreadable ({exc}); sheet column left empty")
            results[method] = None
            continue
        decoder = results_decoder(read, f"{method} on {name}", sink)
        results[method] = SheetResults(read.tracking, read.mesh["faces"], decoder)
        if decoder is not None:
            titles.append(DECODED_TITLE.format(method))
    rows = []
    try:
        decoded = [(i, image) for i, image in footage.frames(wanted[0], wanted[-1]) if i in wanted]
    except BadInput as exc:
        sink.warning(f"report: no contact sheet of {name}: {exc}")
        return None
    for index, image in decoded:
        footage_tile = _tile(image)
        _label(footage_tile, f"frame {index}", (6, 18))
        tiles = [footage_tile]
        for method in methods:
            entry = results[method]
            if entry is None:
                tiles.append(_note_tile(image, "no results"))
                continue
            columns = 1 if entry.decoder is None else 2
            found = np.flatnonzero(entry.tracking["frames"] == index)
            if len(found) == 0 or entry.tracking["confidence"][found[0]] <= 0:
                tiles += [_note_tile(image, "untracked")] * columns
                continue
            tracking, row = entry.tracking, int(found[0])
            camera = head_to_camera(tracking["vertices"][row], tracking["head_pose"][row])
            tiles.append(_tile(overlay_frame(image, camera, entry.faces, tracking["intrinsics"],
                                             tracking["landmarks_2d"][row], tracking["landmarks_fit"][row])))
            if entry.decoder is not None:
                tiles.append(_tile(decoded_over_frame(image, *entry.decoder, tracking, row)))
        rows.append(np.concatenate(tiles, axis=1))
    sheet = np.concatenate(rows, axis=0)
    band = np.full((SHEET_LABEL_HEIGHT, sheet.shape[1], 3), 32, np.uint8)
    for col, title in enumerate(titles):
        _label(band, title, (col * SHEET_TILE_WIDTH + 6, 19), 0.55)
    return np.concatenate([band, sheet], axis=0)


def _write_image(image: np.ndarray, path: Path) -> None:
    """(H, W, 3) uint8 RGB to `path` (format from its suffix; JPEG at quality 88), atomically."""
    import cv2

    with atomic_file(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, 88]):
            raise OSError(f"cannot write {path}")


def write_report(document: dict, json_path: Path, sink: EventSink) -> None:
    """Write the suite report next to `json_path` (layout: module docstring), logging each
    file written. document: run_suite's (`clips`, `methods`, `work`, header fields)."""
    json_path = Path(json_path)
    stem = json_path.stem
    folder = json_path.parent
    with atomic_file(json_path) as tmp:
        tmp.write_text(json.dumps(json_safe(document), indent=1, allow_nan=False) + "\n")
    sink.log(f"wrote {json_path}")

    images: list[Path] = []
    over_frames = folder / f"{stem}_vertex_error_over_frames.png"
    if plot_error_over_frames(document, over_frames, sink):
        images.append(over_frames)
    heatmap = folder / f"{stem}_vertex_error_heatmap.png"
    if plot_error_heatmap(document, heatmap, sink):
        images.append(heatmap)
    for path in images:
        sink.log(f"wrote {path}")
    methods = [str(m.get("name")) for m in document.get("methods", [])]
    work = Path(document.get("work", "."))
    real_sheets = None
    # Ground-truth clips are our own renders, drawn beside the report (committed with it). Real
    # footage may never be committed or shown: its sheets go to the work folder alone, for
    # whoever runs the suite. The photos get none.
    for clip in clips_of_kind(document, "truth") + clips_of_kind(document, "real"):
        sheet = contact_sheet(clip, methods, work, sink)
        if sheet is None:
            continue
        if clip.get("kind") == "truth":
            # JPEG: photographic sheets are committed with the report, a PNG is 5-8x larger.
            path = folder / f"{stem}_sheet_{clip.get('name')}.jpg"
            images.append(path)
        else:
            real_sheets = work / REAL_SHEETS
            path = real_sheets / f"{clip.get('name')}.jpg"
        _write_image(sheet, path)
        sink.log(f"wrote {path}")

    markdown = json_path.with_suffix(".md")
    with atomic_file(markdown) as tmp:
        tmp.write_text(markdown_report(document, images, real_sheets) + "\n")
    sink.log(f"wrote {markdown}")
