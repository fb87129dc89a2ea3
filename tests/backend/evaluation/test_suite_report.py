"""The suite report (backend/evaluation/suite_report.py) on a small synthetic suite: tables with a
row per method and clip, missing values shown, honest means, JSON without NaN, plots and
contact sheets of the ground-truth clips beside the report, those of the real clips in the
work folder alone, and a decoded-texture column for methods whose results hold latent codes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from backend.dam.model import DamArchitecture, DeepAppearanceModel
from backend.dam.model_folder import model_record, save_model, save_model_head
from backend.evaluation.suite_report import (
    MISSING,
    REAL_COLUMNS,
    REAL_SHEETS,
    SHEET_LABEL_HEIGHT,
    SHEET_ROWS,
    SHEET_TILE_WIDTH,
    TRUTH_COLUMNS,
    front_camera,
    write_report,
)
from backend.events import EventSink
from backend.formats.head_file import HeadAsset, save_head
from backend.formats.results_dir import TrackingArrays, write_arrays, write_summary
from backend.movie_writer import write_movie

FRAMES = 8
SIZE = 96  # footage pixels
METHODS = ("alpha", "beta")
# Reference rows (yardsticks.py) and the figure scale of their metrics: the oracle only on truth-a.
REFERENCES = {"neutral": ("truth-a", "truth-b"), "dam-oracle": ("truth-a",)}


def ellipsoid_head(rings: int = 14, segments: int = 24) -> HeadAsset:
    """A small head-shaped ellipsoid in head space (metres, +Z up, face toward -Y), its front
    as the face region."""
    lat = np.linspace(-1.4, 1.4, rings)
    lon = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    vertices = np.stack([0.075 * np.cos(la) * np.cos(lo), 0.09 * np.cos(la) * np.sin(lo),
                         0.11 * np.sin(la) + 0.1], -1).reshape(-1, 3).astype(np.float32)
    faces = []
    for r in range(rings - 1):
        for s in range(segments):
            a, b = r * segments + s, r * segments + (s + 1) % segments
            faces += [(a, b, a + segments), (b, b + segments, a + segments)]
    face_region = vertices[:, 1] < -0.03
    deltas = np.zeros((1, len(vertices), 3), np.float32)
    deltas[0, :, 2] = -0.01 * face_region
    return HeadAsset(vertices=vertices, faces=np.array(faces, np.int64),
                     uv=np.stack([lo / (2 * np.pi), (la + 1.4) / 2.8], -1).reshape(-1, 2).astype(np.float32),
                     uv_faces=np.array(faces, np.int64), blendshapes=deltas, blendshape_names=["jawOpen"],
                     landmark_vertex=np.resize(np.flatnonzero(face_region), 68).astype(np.int32),
                     landmark_mask=np.ones(68, bool), face_region=face_region)


def write_results(folder: Path, head: HeadAsset, untracked: tuple[int, ...],
                  latent: np.ndarray | None = None, summary: dict | None = None) -> None:
    """A results directory of the head, still, 0.5 m in front of the camera; `latent` (F, Z)
    and `summary` (result.json fields) as a face-model tracker writes them."""
    rotation = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = rotation, -rotation @ np.array([0.0, -0.5, 0.1])
    confidence = np.ones(FRAMES)
    confidence[list(untracked)] = 0
    folder.mkdir(parents=True)
    tracking = TrackingArrays(frames=np.arange(FRAMES), vertices=np.repeat(head.vertices[None], FRAMES, 0),
                              head_pose=np.repeat(pose[None], FRAMES, 0),
                              intrinsics=np.array([[150.0, 0, 47.5], [0, 150.0, 47.5], [0, 0, 1]]),
                              confidence=confidence, landmarks_2d=np.full((FRAMES, 68, 2), 48.0),
                              landmarks_conf=np.ones((FRAMES, 68)),
                              landmarks_fit=np.full((FRAMES, 68, 2), 50.0),
                              optional={} if latent is None else {"latent": latent})
    write_arrays(folder, tracking, head)
    write_summary(folder, {"tracker": folder.parent.name, **(summary or {})}, head)


def write_footage(path: Path) -> None:
    """FRAMES frames of colour ramps, changing over time, as an mp4."""
    ramp = np.linspace(0, 255, SIZE, dtype=np.float32)
    write_movie((np.stack([np.add.outer(ramp, ramp) / 2, np.full((SIZE, SIZE), 20.0 * f),
                           np.add.outer(ramp, -ramp) / 2 + 128], -1).clip(0, 255).astype(np.uint8)
                 for f in range(FRAMES)), path, 25.0)


def truth_metrics(scale: float) -> dict:
    return {"kind": "truth", "vertex_mm_mean": 2.0 * scale, "vertex_mm_p95": 4.0 * scale,
            "rotation_deg_mean": 1.0 * scale, "rotation_deg_p95": 2.0 * scale,
            "landmark_px_mean": 3.0 * scale, "landmark_px_p95": 5.0 * scale, "landmark_nme": 0.04 * scale,
            "jitter_px": 0.2 * scale, "truth_jitter_px": 0.1, "frames": FRAMES, "frames_untracked": 0,
            "frames_missing": 0, "fraction_tracked": 1.0, "track_seconds": 1.5}


def real_metrics(scale: float) -> dict:
    return {"kind": "real", "reference_detector": "dlib", "frames": 60, "frames_tracked": 58,
            "fraction_tracked": 58 / 60, "agreement_nme_mean": 0.05 * scale, "agreement_px_mean": 4.0 * scale,
            "agreement_frames_used": 57, "detections_nme_mean": 0.04, "jitter_tracked_px": 0.5 * scale,
            "jitter_reference_px": 1.0, "jitter_ratio": 0.5 * scale, "photometric_rms_255": 12.0 * scale,
            "track_seconds": 3.0}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A synthetic suite (two truth clips sharing one rendered folder, two real clips, the
    photos) reported into a folder; returns the JSON path and the sink's stderr."""
    root = tmp_path_factory.mktemp("suite")
    work, clip_folder = root / "work", root / "work" / "clips" / "synthetic"
    clip_folder.mkdir(parents=True)
    head = ellipsoid_head()
    save_head(head, clip_folder / "head.npz")
    write_footage(clip_folder / "footage.mp4")
    per_vertex = np.where(head.face_region, np.abs(head.vertices[:, 2] - 0.1) * 100, np.nan)
    for method, scale in zip(METHODS, (1.0, 2.0), strict=True):
        for clip in ("truth-a", "truth-b"):
            write_results(work / "results" / method / clip, head, (FRAMES - 1,) if method == "beta" else ())
            if (method, clip) == ("beta", "truth-b"):
                continue  # no per-frame scores: warned about and left out of the plots
            scores = work / "scores" / method / f"{clip}.npz"
            scores.parent.mkdir(parents=True, exist_ok=True)
            np.savez(scores, frames=np.arange(FRAMES), vertex_mm_per_frame=scale * (1 + np.arange(FRAMES) / 4),
                     vertex_mm_per_vertex=scale * per_vertex)
    for reference, clips in REFERENCES.items():
        for clip in clips:
            scores = work / "scores" / "references" / reference / f"{clip}.npz"
            scores.parent.mkdir(parents=True, exist_ok=True)
            np.savez(scores, frames=np.arange(FRAMES), vertex_mm_per_frame=np.full(FRAMES, 0.5),
                     vertex_mm_per_vertex=0.5 * per_vertex)

    domain = {"light": "hard", "background": "room", "lens_mm": None, "motion_blur": 0.5, "noise": 3.0,
              "crf": 23, "width": SIZE, "height": SIZE, "samples": 8}
    truth_clip = {"kind": "truth", "head": "default", "performance": "procedural", "domain": domain,
                  "frames": FRAMES, "folder": str(clip_folder)}
    alpha_b = {**truth_metrics(1.0), "jitter_px": float("nan")}
    alpha_r2 = {k: v for k, v in real_metrics(1.0).items() if k != "jitter_ratio"}
    document = {
        "benchmark": "suite", "command": "python -m backend suite --quick", "work": str(work),
        "machine": {"platform": "test", "threads": 2, "device": "cpu"}, "seconds": 12.5,
        "clip_making_seconds": 4.0, "peak_memory_mib": {"suite": 900.0, "largest_subprocess": 300.0},
        "clips": [{**truth_clip, "name": "truth-a"}, {**truth_clip, "name": "truth-b"},
                  {"name": "real-one", "kind": "real", "file": "real-one.mp4", "frames": 60},
                  {"name": "real-two", "kind": "real", "file": "real-two.mp4", "frames": 60},
                  {"name": "annotated-photos", "kind": "photos", "photos": ["p1.jpg", "p2.jpg"]}],
        "methods": [
            {"name": "alpha", "description": "the first tracker",
             "clips": {"truth-a": truth_metrics(1.0), "truth-b": alpha_b, "real-one": real_metrics(1.0),
                       "real-two": alpha_r2,
                       "annotated-photos": {"per_photo_nme": {"p1.jpg": 0.05, "p2.jpg": None},
                                            "nme_mean": 0.05, "photos": 2, "photos_tracked": 1}}},
            {"name": "beta", "description": "the second tracker",  # no metrics for truth-b at all
             "clips": {"truth-a": truth_metrics(2.0), "real-one": real_metrics(2.0),
                       "real-two": real_metrics(2.0),
                       "annotated-photos": {"per_photo_nme": {"p1.jpg": 0.07, "p2.jpg": 0.09},
                                            "nme_mean": 0.08, "photos": 2, "photos_tracked": 2}}},
        ],
        "references": [{"name": name, "description": f"the {name} yardstick",
                        "clips": {clip: truth_metrics(3.0 if name == "neutral" else 0.1) for clip in clips}}
                       for name, clips in REFERENCES.items()],
    }
    err = io.StringIO()
    json_path = root / "report" / "suite.json"
    write_report(document, json_path, EventSink(False, out=io.StringIO(), err=err))
    return json_path, err.getvalue()


def _section(markdown: str, title: str) -> str:
    """The markdown from the heading `## title...` to the next heading."""
    return markdown.split("\n## " + title, 1)[1].split("\n## ", 1)[0]


def _row(markdown: str, first: str, second: str) -> list[str]:
    """Cells of the one table row starting with `first | second`."""
    rows = [line for line in markdown.splitlines() if line.startswith(f"| {first} | {second} |")]
    assert len(rows) == 1, (first, second, rows)
    return [cell.strip() for cell in rows[0].strip("|").split(" | ")]


def test_markdown_has_every_method_and_clip(report):
    json_path, _ = report
    markdown = json_path.with_suffix(".md").read_text()
    assert "`python -m backend suite --quick`" in markdown
    for clip in ("truth-a", "truth-b", "real-one", "real-two"):
        for method in METHODS:
            _row(markdown, clip, method)
    # A method without metrics for a clip keeps its row, every figure missing.
    assert set(_row(markdown, "truth-b", "beta")[2:]) == {MISSING}
    ratio = 2 + [key for key, _, _ in REAL_COLUMNS].index("jitter_ratio")
    assert _row(markdown, "real-two", "alpha")[ratio] == MISSING
    assert _row(markdown, "real-two", "beta")[ratio] == "1.00"
    # "description" lines and the domains table
    assert "**beta**: the second tracker" in markdown
    assert _row(markdown, "truth-a", "default")[2] == "procedural"


def test_mean_rows_count_what_they_average(report):
    markdown = report[0].with_suffix(".md").read_text()
    truth, real = _section(markdown, "Ground-truth clips: metrics"), _section(markdown, "Real clips")
    keys = [key for key, _, _ in TRUTH_COLUMNS]
    alpha = _row(truth, "**mean (2 clips)**", "alpha")
    assert alpha[2 + keys.index("vertex_mm_mean")] == "2.00"
    assert alpha[2 + keys.index("jitter_px")] == "0.200 (1/2)"  # the NaN is skipped, and said so
    beta = _row(truth, "**mean (2 clips)**", "beta")
    assert beta[2 + keys.index("vertex_mm_mean")] == "4.00 (1/2)"
    real_keys = [key for key, _, _ in REAL_COLUMNS]
    real_alpha = _row(real, "**mean (2 clips)**", "alpha")
    assert real_alpha[2 + real_keys.index("jitter_ratio")] == "0.50 (1/2)"
    assert real_alpha[2 + real_keys.index("agreement_nme_mean")] == "0.0500"
    photos = _row(markdown, "alpha", "0.0500")
    assert photos[2:] == ["1 / 2", "0.0500", "untracked"]


def test_json_has_no_nan(report):
    json_path, _ = report
    text = json_path.read_text()
    assert "NaN" not in text
    document = json.loads(text)
    assert document["methods"][0]["clips"]["truth-b"]["jitter_px"] is None
    assert document["methods"][0]["clips"]["annotated-photos"]["per_photo_nme"]["p2.jpg"] is None


def test_images_of_the_truth_clips_only(report):
    json_path, log = report
    folder = json_path.parent
    pngs = {p.name for p in folder.iterdir() if p.suffix in (".png", ".jpg")}
    assert pngs == {"suite_vertex_error_over_frames.png", "suite_vertex_error_heatmap.png",
                    "suite_sheet_truth-a.jpg", "suite_sheet_truth-b.jpg"}
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp file left
    for name in pngs:
        image = cv2.imread(str(folder / name))
        assert image is not None and image.shape[0] > 200 and image.std() > 10, name
        assert f"wrote {folder / name}" in log
    sheet = cv2.imread(str(folder / "suite_sheet_truth-a.jpg"))
    assert sheet.shape == (SHEET_LABEL_HEIGHT + SHEET_ROWS * SHEET_TILE_WIDTH, 3 * SHEET_TILE_WIDTH, 3)
    # The heat map is coloured (magma), not only the grey of unscored vertices.
    hsv = cv2.cvtColor(cv2.imread(str(folder / "suite_vertex_error_heatmap.png")), cv2.COLOR_BGR2HSV)
    assert (hsv[..., 1] > 100).mean() > 0.02
    assert "beta on truth-b" in log  # the missing per-frame scores are warned about
    markdown = json_path.with_suffix(".md").read_text()
    assert "![suite_sheet_truth-a](suite_sheet_truth-a.jpg)" in markdown


def test_front_camera_frames_the_face():
    head = ellipsoid_head()
    points = head.vertices[head.face_region].astype(np.float64)
    rotation, translation, intrinsics = front_camera(points, 512)
    camera = points @ rotation.T + translation
    assert (camera[:, 2] > 0).all()
    pixels = camera @ intrinsics.T
    pixels = pixels[:, :2] / pixels[:, 2:]
    assert pixels.min() >= 0 and pixels.max() <= 511
    span = (pixels.max(0) - pixels.min(0)).max() / 512
    assert 0.7 < span < 0.95
    # +Z (up) is image up, +X is image right: the camera looks at the face from the front.
    assert pixels[np.argmax(points[:, 2]), 1] < pixels[np.argmin(points[:, 2]), 1]
    assert pixels[np.argmax(points[:, 0]), 0] > pixels[np.argmin(points[:, 0]), 0]


def test_reference_rows_come_first_on_truth_clips_only(report):
    json_path, log = report
    markdown = json_path.with_suffix(".md").read_text()
    truth, real = _section(markdown, "Ground-truth clips: metrics"), _section(markdown, "Real clips")
    keys = [key for key, _, _ in TRUTH_COLUMNS]
    labels = [line.split(" | ")[1] for line in truth.splitlines() if line.startswith("| truth-a |")]
    assert labels == ["neutral (reference)", "dam-oracle (reference)", "alpha", "beta"]
    assert _row(truth, "truth-a", "neutral (reference)")[2 + keys.index("vertex_mm_mean")] == "6.00"
    assert set(_row(truth, "truth-b", "dam-oracle (reference)")[2:]) == {MISSING}  # not applicable
    oracle = _row(truth, "**mean (2 clips)**", "dam-oracle (reference)")
    assert oracle[2 + keys.index("vertex_mm_mean")] == "0.20 (1/2)"
    assert "(reference)" not in real and "(reference)" not in _section(markdown, "Annotated photos")
    assert "**neutral (reference)**: the neutral yardstick" in _section(markdown, "Reference rows")
    assert "dam-oracle on truth-b" not in log  # not applicable: no warning about missing scores
    assert "alpha on truth-b" not in log and "beta on truth-b" in log


DECODED_COLOUR = (255, 0, 255)  # the tiny DAM's texture, whatever the code and view: magenta


def magenta_model(head: HeadAsset, folder: Path) -> Path:
    """A tiny DAM of `head` in a model folder whose decoded texture is DECODED_COLOUR for every
    code and view (its last layer zeroed, its mean texture that colour)."""
    model = DeepAppearanceModel(DamArchitecture(latent=4, texture_size=16, hidden=8, base_channels=4),
                                head.num_vertices)
    last = model.decode_texture[-1]
    last.weight.data.zero_()
    last.bias.data.zero_()
    model.texture_mean[:] = (torch.tensor(DECODED_COLOUR, dtype=torch.float32) / 255)[:, None, None]
    save_model(folder, model, {"topology_hash": head.topology_hash})
    save_model_head(folder, head)
    return folder


@pytest.fixture(scope="module")
def sheets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A suite of one ground-truth and one real clip, tracked by a method without latent codes
    ("plain") and one with them ("face-model", its result.json recording its DAM), reported
    with FACEADAPT_DATA holding the real clip; returns the JSON path, the work folder and the
    sink's stderr."""
    root = tmp_path_factory.mktemp("sheets")
    work, data, clip_folder = root / "work", root / "data", root / "work" / "clips" / "truth-a"
    head = ellipsoid_head()
    clip_folder.mkdir(parents=True)
    save_head(head, clip_folder / "head.npz")
    write_footage(clip_folder / "footage.mp4")
    (data / "videos").mkdir(parents=True)
    write_footage(data / "videos" / "real-one.mp4")
    model = magenta_model(head, root / "model")
    for clip in ("truth-a", "real-one"):
        write_results(work / "results" / "plain" / clip, head, ())
        write_results(work / "results" / "face-model" / clip, head, (), np.zeros((FRAMES, 4), np.float32),
                      {"dam_model": model_record(str(model), model)})
    document = {
        "benchmark": "suite", "command": "python -m backend suite --quick", "work": str(work),
        "clips": [{"name": "truth-a", "kind": "truth", "head": "default", "frames": FRAMES,
                   "folder": str(clip_folder)},
                  {"name": "real-one", "kind": "real", "file": "real-one.mp4", "frames": 60}],
        "methods": [{"name": method, "description": method,
                     "clips": {"truth-a": truth_metrics(1.0), "real-one": real_metrics(1.0)}}
                    for method in ("plain", "face-model")],
    }
    err = io.StringIO()
    json_path = root / "report" / "suite.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FACEADAPT_DATA", str(data))
        write_report(document, json_path, EventSink(False, out=io.StringIO(), err=err))
    return json_path, work, err.getvalue()


def _tiles(sheet: np.ndarray) -> list[np.ndarray]:
    """The columns of a sheet's first row of tiles, RGB."""
    row = cv2.cvtColor(sheet, cv2.COLOR_BGR2RGB)[SHEET_LABEL_HEIGHT:SHEET_LABEL_HEIGHT + SHEET_TILE_WIDTH]
    return [row[:, i:i + SHEET_TILE_WIDTH].astype(np.int16)
            for i in range(0, row.shape[1], SHEET_TILE_WIDTH)]


def test_real_clip_sheets_stay_in_the_work_folder(sheets):
    json_path, work, log = sheets
    real = work / REAL_SHEETS / "real-one.jpg"
    image = cv2.imread(str(real))
    assert image is not None and image.std() > 10
    assert f"wrote {real}" in log
    beside = {p.name for p in json_path.parent.iterdir()}
    assert "suite_sheet_truth-a.jpg" in beside
    assert not [name for name in beside if "real-one" in name]
    markdown = json_path.with_suffix(".md").read_text()
    assert "real-one.jpg" not in markdown and f"`{work / REAL_SHEETS}/<clip>.jpg`" in markdown
    assert "![suite_sheet_truth-a](suite_sheet_truth-a.jpg)" in markdown


def test_methods_with_latent_codes_get_a_decoded_texture_column(sheets):
    json_path, work, log = sheets
    for sheet in (cv2.imread(str(json_path.parent / "suite_sheet_truth-a.jpg")),
                  cv2.imread(str(work / REAL_SHEETS / "real-one.jpg"))):
        # footage | plain | face-model | face-model's decoded texture: none for "plain"
        assert sheet.shape == (SHEET_LABEL_HEIGHT + SHEET_ROWS * SHEET_TILE_WIDTH, 4 * SHEET_TILE_WIDTH, 3)
        footage, plain, mesh, decoded = _tiles(sheet)
        face = (slice(140, 180), slice(140, 180))  # the head's front, at the frame's centre
        corner = (slice(0, 40), slice(280, 320))  # off the head: the frame itself
        assert np.abs(decoded[face] - DECODED_COLOUR).mean() < 30
        assert np.abs(decoded[face] - footage[face]).mean() > 60
        assert np.abs(decoded[corner] - footage[corner]).mean() < 8
        # The mesh overlays (grey mesh, landmarks) are not the decoded texture.
        for overlay in (plain, mesh):
            assert np.abs(overlay[face] - DECODED_COLOUR).mean() > 60
    assert "no decoded texture" not in log
