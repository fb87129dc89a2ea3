"""Metrics of a tracked real clip, which has no ground truth (issue 6, "real footage").

- Agreement of the tracked landmarks with an independent detector (dlib, which no tracker uses):
  NME over the detector's inter-ocular distance, and pixels.
- Temporal jitter of the tracked landmarks and of the detector's over the same frames, and
  their ratio (the detector's own jitter is the scale of "noisy" on this clip).
- Photometric error of the rendered result against the frames over the face region.
- The fraction of frames tracked.

Nothing is averaged away silently: every figure comes with the counts of frames it used and of
frames skipped, and why. Shapes: F frames, V vertices, 68 landmarks (iBUG order); pixels are
0-based with centres at integers (DESIGN.md conventions).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..events import EventSink
from ..footage import Footage
from ..formats import protocol
from ..formats.camera import head_to_camera
from ..formats.errors import BadInput
from ..formats.head_file import HeadAsset
from ..formats.results_dir import RESULT_JSON, check_topology, read_results
from ..landmarks.detection import LandmarkDetector
from ..landmarks.nme import nme as landmark_nme
from ..render.rasterize import project
from ..render.unlit import render_unlit
from ..render.unwrap import make_atlas, unwrap
from .face_coverage import FaceCoverage
from .metrics import jitter_px, landmark_errors_px, photometric_error

# Face-region pixels kept per clip for the colour fit and the RMS: bounds memory (two float32
# (N, 3) arrays, then float64 inside the least-squares fit: ~100 MB) whatever the clip's length
# and resolution, and is far more than 12 colour-transform parameters need.
MAX_PHOTOMETRIC_PIXELS = 500_000
# A rendered pixel is scored only when every texel its bilinear lookup touches was seen in some
# frame: unseen texels (and the empty texels across UV seams) have no colour to compare.
SEEN_COVERAGE = 1 - 1e-3
# Below this reference jitter (pixels) the reference is still or moves uniformly: a ratio to it
# would divide rounding noise by rounding noise.
JITTER_RATIO_FLOOR_PX = 1e-6


def fraction_tracked(confidence: np.ndarray) -> float:
    """Fraction of frames with confidence > 0 (0 = untracked). confidence: (F,), F >= 1."""
    if confidence.ndim != 1 or len(confidence) == 0:
        raise BadInput(f"confidence must be (F,) with F >= 1, got {confidence.shape}")
    return float((confidence > 0).mean())


def _check_landmarks(name: str, points: np.ndarray, frames: int) -> None:
    if points.shape != (frames, protocol.NUM_LANDMARKS, 2):
        raise BadInput(f"{name} must be ({frames}, 68, 2), got {points.shape}")


def detector_agreement(tracked: np.ndarray, reference: np.ndarray, reference_found: np.ndarray,
                       tracked_ok: np.ndarray, mask: np.ndarray | None = None) -> dict[str, Any]:
    """Tracked landmarks against a reference detector's, over frames where both exist.

    tracked, reference: (F, 68, 2) pixels; reference_found, tracked_ok: (F,) bool; mask (68,)
    bool selects the points scored (those the head can place). Returns NME (mean point error over
    the reference's inter-ocular distance) mean and 95th percentile over frames, mean point
    error in pixels, and frame counts: used, skipped because untracked, skipped because the
    reference found no face in a tracked frame (they sum to F). Figures are None with no frame.
    """
    frames = len(tracked)
    _check_landmarks("tracked landmarks", tracked, frames)
    _check_landmarks("reference landmarks", reference, frames)
    if reference_found.shape != (frames,) or tracked_ok.shape != (frames,):
        raise BadInput(f"reference_found {reference_found.shape} and tracked_ok {tracked_ok.shape} "
                       f"must both be ({frames},)")
    if mask is not None and (mask.shape != (protocol.NUM_LANDMARKS,) or not mask.any()):
        raise BadInput(f"landmark mask must be (68,) bool with a point set, got {mask.shape}")
    used = tracked_ok & reference_found
    result: dict[str, Any] = {
        "frames_used": int(used.sum()),
        "frames_skipped_untracked": int((~tracked_ok).sum()),
        "frames_skipped_reference_no_face": int((tracked_ok & ~reference_found).sum()),
        "points": int(protocol.NUM_LANDMARKS if mask is None else mask.sum()),
        "nme_mean": None, "nme_p95": None, "px_mean": None,
    }
    if used.any():
        nme = landmark_nme(tracked[used], reference[used], mask)
        result["nme_mean"] = float(nme.mean())
        result["nme_p95"] = float(np.percentile(nme, 95))
        result["px_mean"] = float(landmark_errors_px(tracked[used], reference[used], mask).mean())
    return result


def consecutive_runs(usable: np.ndarray, frames: np.ndarray) -> list[np.ndarray]:
    """Row indices of each run of usable rows whose source frames follow one another, runs of 3
    or more only (a second difference needs 3 frames). usable: (F,) bool; frames: (F,) indices."""
    runs: list[np.ndarray] = []
    current: list[int] = []
    for row in range(len(usable)):
        if usable[row] and current and frames[row] == frames[current[-1]] + 1:
            current.append(row)
            continue
        if len(current) >= 3:
            runs.append(np.array(current))
        current = [row] if usable[row] else []
    if len(current) >= 3:
        runs.append(np.array(current))
    return runs


def landmark_jitter(tracked: np.ndarray, reference: np.ndarray, usable: np.ndarray, frames: np.ndarray,
                    mask: np.ndarray | None = None) -> dict[str, Any]:
    """Mean second-difference length (pixels) of the tracked and the reference landmarks over the
    same frames, and tracked / reference.

    tracked, reference: (F, 68, 2) pixels; usable: (F,) bool (tracked and reference found);
    frames: (F,) source indices; mask (68,) bool. Only runs of consecutive usable frames count: a
    gap (an unusable or missing frame) breaks the second difference instead of spanning it. The
    mean is pooled over every second difference of every run. Figures are None without a run; the
    ratio is None when the reference does not jitter (below JITTER_RATIO_FLOOR_PX).
    """
    count = len(tracked)
    _check_landmarks("tracked landmarks", tracked, count)
    _check_landmarks("reference landmarks", reference, count)
    if usable.shape != (count,) or frames.shape != (count,):
        raise BadInput(f"usable {usable.shape} and frames {frames.shape} must both be ({count},)")
    runs = consecutive_runs(usable, frames)
    differences = np.array([len(run) - 2 for run in runs], np.float64)
    result: dict[str, Any] = {
        "runs": len(runs), "frames": int(sum(len(run) for run in runs)),
        "second_differences": int(differences.sum()),
        "tracked_px": None, "reference_px": None, "ratio": None,
    }
    if runs:
        # Each run's mean weighted by its number of second differences = the pooled mean.
        weights = differences / differences.sum()
        tracked_px = float(sum(w * jitter_px(tracked[run], mask) for w, run in zip(weights, runs, strict=True)))
        reference_px = float(sum(w * jitter_px(reference[run], mask)
                                 for w, run in zip(weights, runs, strict=True)))
        result["tracked_px"], result["reference_px"] = tracked_px, reference_px
        result["ratio"] = tracked_px / reference_px if reference_px > JITTER_RATIO_FLOOR_PX else None
    return result


def _frames_of(footage: Footage, frames: np.ndarray, rows: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(row, (H, W, 3) uint8 RGB) for the given rows of a results' frames, decoding one frame at
    a time (the clip is never held in memory)."""
    if len(rows) == 0:
        return
    wanted = {int(frames[row]): int(row) for row in rows}
    for index, image in footage.frames(min(wanted), max(wanted)):
        if index in wanted:
            yield wanted[index], image


def _check_footage_covers(footage: Footage, frames: np.ndarray) -> None:
    last, count = int(frames.max()), footage.info.frame_count
    if last >= count:
        raise BadInput(f"footage {footage.path} has {count} frames (0-{count - 1}), the results need "
                       f"frame {last}: pass the footage that was tracked")


def reference_landmarks(footage: Footage, frames: np.ndarray, rows: np.ndarray, detector: LandmarkDetector,
                        sink: EventSink) -> tuple[np.ndarray, np.ndarray]:
    """The detector's landmarks on the given rows of a results' frames.

    frames: (F,) source indices; rows: indices into them. Returns points (F, 68, 2) pixels and
    found (F,) bool; rows not given, and frames without a face, stay not found (points zero).
    """
    _check_footage_covers(footage, frames)
    points = np.zeros((len(frames), protocol.NUM_LANDMARKS, 2), np.float32)
    found = np.zeros(len(frames), bool)
    for done, (row, image) in enumerate(_frames_of(footage, frames, rows), start=1):
        detection = detector.detect(image)
        points[row], found[row] = detection.points, detection.found
        sink.progress("reference landmarks", done, len(rows))
    return points, found


def photometric_clip_error(footage: Footage, tracking: dict[str, np.ndarray], head: HeadAsset,
                           sink: EventSink, frame_step: int = 1, device: str = "cpu",
                           texture_size: int = 512,
                           max_pixels: int = MAX_PHOTOMETRIC_PIXELS,
                           common_with: Sequence[FaceCoverage] = ()) -> dict[str, Any]:
    """RMS colour error (0-255 scale) of the tracked clip re-rendered against its frames, over the
    face region, after one best-fit affine colour transform for the clip.

    The clip's texture is the visibility-weighted mean of every scored frame unwrapped into UV
    space through its tracked mesh; each scored frame is re-rendered with that texture through
    its tracked mesh (no shading: the texture holds the clip's light). A misaligned track smears
    the clip texture and misplaces it, so the error rises with tracking error; computed
    identically for every method, so it compares methods on one clip at one frame_step (not an
    absolute quality: each scored frame is part of the texture it is compared with, which lowers
    the error of short or sparsely scored clips). A track that is wrong the same way in every
    frame of a static head is invisible to it.

    tracking: tracking.npz arrays (frames (F,), vertices (F, V, 3) head space metres, head_pose
    (F, 4, 4) head -> OpenCV camera, intrinsics (3, 3) pixels, confidence (F,)); head: the
    tracked topology (faces, uv, uv_faces, face_region). Scores every `frame_step`-th tracked
    frame; untracked frames are never scored. Face-region pixels: those of triangles whose three
    vertices are in `head.face_region`, whose texels were all seen. At most `max_pixels` of them
    (a fixed-seed uniform sample of each frame's share) enter the fit. Frames are decoded twice
    (texture, then render), one at a time. With `common_with`, only pixels every one of those
    tracks' face regions also covers in the same source frame are scored (the texture is still
    this track's own), so tracks with different heads compare on the same pixels. Returns
    rms_255 (None with no pixel), frames scored, pixels used, face pixels covered (this track's,
    and `pixels_common`, those also covered by `common_with`).
    """
    if frame_step < 1:
        raise BadInput(f"frame step {frame_step}: must be 1 or more")
    _check_footage_covers(footage, tracking["frames"])
    rows = np.flatnonzero(tracking["confidence"] > 0)[::frame_step]
    result: dict[str, Any] = {"rms_255": None, "frames": len(rows), "pixels": 0, "pixels_face": 0,
                              "frame_step": frame_step, "texture_size": texture_size}
    if common_with:
        result.update(pixels_common=0, common_with=[other.label for other in common_with])
    if len(rows) == 0:
        return result
    dev = torch.device(device)
    faces = torch.as_tensor(head.faces, device=dev)
    uv, uv_faces = torch.as_tensor(head.uv), torch.as_tensor(head.uv_faces)
    face_triangle = torch.as_tensor(head.face_triangles, device=dev)
    atlas = make_atlas(uv, uv_faces, torch.as_tensor(head.faces), texture_size).to(dev).restricted(
        face_triangle)
    face_vertex = torch.as_tensor(head.face_region, device=dev)
    intrinsics = torch.as_tensor(tracking["intrinsics"], dtype=torch.float32, device=dev)
    total = 2 * len(rows)

    def camera_vertices(row: int) -> torch.Tensor:
        return torch.as_tensor(head_to_camera(tracking["vertices"][row], tracking["head_pose"][row]),
                               dtype=torch.float32, device=dev)[None]

    def picture(image: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(image, device=dev).permute(2, 0, 1).float() / 255

    colour_sum = torch.zeros(3, texture_size, texture_size, device=dev)
    seen_count = torch.zeros(texture_size, texture_size, device=dev)
    with torch.no_grad():
        for done, (row, image) in enumerate(_frames_of(footage, tracking["frames"], rows), start=1):
            texture, visible = unwrap(picture(image), camera_vertices(row), intrinsics, faces, atlas)
            colour_sum += texture[0]  # zero where not visible
            seen_count += visible[0]
            sink.progress("photometric", done, total)
        # Colour (3 channels) and whether each texel was seen (1), looked up together.
        clip_texture = torch.cat([colour_sum / seen_count.clamp(min=1), (seen_count > 0).float()[None]])

        rng = np.random.default_rng(0)
        share = max(1, max_pixels // len(rows))
        rendered_parts, observed_parts = [], []
        for done, (row, image) in enumerate(_frames_of(footage, tracking["frames"], rows),
                                            start=len(rows) + 1):
            vertices = camera_vertices(row)
            window = _face_window(project(vertices, intrinsics)[0], face_vertex, *image.shape[:2])
            if window is not None:
                x0, y0, x1, y1 = window
                # Rendering only the face's bounding box (the whole mesh, so occlusion holds)
                # costs in proportion to the box, a fraction of the frame.
                looked_up, fragments = render_unlit(vertices, faces, uv, uv_faces, clip_texture,
                                                    intrinsics, y1 - y0, x1 - x0, origin=(x0, y0))
                in_face = fragments.showing(face_triangle)[0]
                result["pixels_face"] += int(in_face.sum())
                for other in common_with:
                    in_face &= other.mask(int(tracking["frames"][row]), window, device)
                if common_with:
                    result["pixels_common"] += int(in_face.sum())
                scored = in_face & (looked_up[0, ..., 3] >= SEEN_COVERAGE)
                rendered = (looked_up[0, ..., :3][scored] * 255).cpu().numpy()
                observed = image[y0:y1, x0:x1][scored.cpu().numpy()].astype(np.float32)
                if len(rendered) > share:
                    keep = np.sort(rng.choice(len(rendered), share, replace=False))
                    rendered, observed = rendered[keep], observed[keep]
                rendered_parts.append(rendered)
                observed_parts.append(observed)
            sink.progress("photometric", done, total)
    result["pixels"] = sum(len(part) for part in rendered_parts)
    if result["pixels"]:
        rendered_all, observed_all = np.concatenate(rendered_parts), np.concatenate(observed_parts)
        result["rms_255"] = photometric_error(rendered_all.astype(np.float64), observed_all.astype(np.float64))
    return result


def _face_window(screen: torch.Tensor, face_vertex: torch.Tensor, height: int,
                 width: int) -> tuple[int, int, int, int] | None:
    """Pixel box (x0, y0, x1, y1), end exclusive, holding every pixel centre the face region's
    projection can cover, clipped to the image; None when it is off the image or behind the camera.
    screen: (V, 3) pixel x, y, depth; face_vertex: (V,) bool."""
    face = screen[face_vertex]
    face = face[face[:, 2] > 0]
    if len(face) == 0:
        return None
    low, high = face[:, :2].amin(0), face[:, :2].amax(0)
    x0, y0 = max(int(np.floor(low[0].item())), 0), max(int(np.floor(low[1].item())), 0)
    x1, y1 = min(int(np.ceil(high[0].item())) + 1, width), min(int(np.ceil(high[1].item())) + 1, height)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _open_footage(results_dir: Path, footage_path: Path | None, document: dict[str, Any],
                  frames: np.ndarray) -> Footage:
    if footage_path is None:
        recorded = document.get("source", {}).get("path")
        if not recorded:
            raise BadInput(f"{results_dir / RESULT_JSON} records no source path; pass the "
                           "footage that was tracked")
        footage_path = Path(recorded)
    footage = Footage(footage_path)
    _check_footage_covers(footage, frames)
    source = document.get("source", {})
    size = (source.get("width"), source.get("height"))
    if None not in size and size != (footage.info.width, footage.info.height):
        raise BadInput(f"footage {footage.path} is {footage.info.width}x{footage.info.height}, the "
                       f"results {results_dir} were tracked on {size[0]}x{size[1]} frames (frame "
                       f"{int(frames[0])} on): pass the footage that was tracked")
    return footage


def evaluate_real_clip(results_dir: Path, footage_path: Path | None, head: HeadAsset, device: str,
                       frame_step: int, sink: EventSink,
                       common_with: Sequence[FaceCoverage] = ()) -> dict[str, Any]:
    """All real-footage metrics of one results directory, as a flat JSON-ready dict.

    footage_path: the tracked footage (default: result.json's source.path); head: the head the
    results were tracked with (its topology must match mesh.npz); frame_step: score every k-th
    tracked frame photometrically (the reference detector runs on every tracked frame: jitter
    needs consecutive frames). Landmarks scored: the fitted model landmarks (landmarks_fit), on
    the points the head can place (mesh.npz landmark_mask); the tracker's input detections
    (landmarks_2d) are scored against the same reference for context; common_with: score the
    photometric error only where those tracks' faces also cover (photometric_clip_error). Raises BadInput on
    missing results, footage not covering the results' frames, or another topology.
    """
    from ..landmarks.dlib_detector import DlibDetector

    if frame_step < 1:
        raise BadInput(f"frame step {frame_step}: must be 1 or more")
    results = read_results(results_dir)
    check_topology(results, "the head given", head.num_vertices, head.topology_hash)
    document, tracking, mesh = results.document, results.tracking, results.mesh
    frames = tracking["frames"]
    footage = _open_footage(results_dir, footage_path, document, frames)
    mask = mesh["landmark_mask"].astype(bool) if "landmark_mask" in mesh else head.landmark_mask
    tracked = tracking["confidence"] > 0

    detector = DlibDetector()
    try:
        reference, found = reference_landmarks(footage, frames, np.flatnonzero(tracked), detector, sink)
    finally:
        detector.close()
    agreement = detector_agreement(tracking["landmarks_fit"], reference, found, tracked, mask)
    detections = detector_agreement(tracking["landmarks_2d"], reference, found, tracked, mask)
    jitter = landmark_jitter(tracking["landmarks_fit"], reference, tracked & found, frames, mask)
    photometric = photometric_clip_error(footage, tracking, head, sink, frame_step, device,
                                         common_with=common_with)
    return {
        "reference_detector": DlibDetector.name,
        "tracker": document.get("tracker"),
        "frames": len(frames),
        "frames_tracked": int(tracked.sum()),
        "fraction_tracked": fraction_tracked(tracking["confidence"]),
        "frames_reference_found": int(found.sum()),
        "reference_no_face_frames": [int(f) for f in frames[tracked & ~found]],
        **{f"agreement_{key}": value for key, value in agreement.items()},
        "detections_nme_mean": detections["nme_mean"],
        **{f"jitter_{key}": value for key, value in jitter.items()},
        **{f"photometric_{key}": value for key, value in photometric.items()},
    }
