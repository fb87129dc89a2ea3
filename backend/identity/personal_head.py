"""`fit-identity`: the default head reshaped to the actor in a clip, written as a head file.

detect (MediaPipe's 478 points on frames sampled evenly over the range) -> choose the frames
that cover the head's turns -> fit the identity (backend/identity/identity_fit.py), then again
with MediaPipe's own prior measured on renders of the fitted head and taken out of its points
(backend/identity/detector_bias.py) -> the default head with the fitted identity added to its
rest shape -> the actor's albedo fused from the chosen frames (backend/identity/albedo_fusion.py).
The topology, UV layout, landmark vertices, face region and expression shapes stay the default
head's (the ARKit deltas are carried over unchanged), so `track --head` and the Blender import
take the file as they take the default head. The first step of a personal face model
(DESIGN.md, "The person's own model").
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..config_parser import nested, option, positional, report_option, required
from ..events import EventSink
from ..footage import Footage, parse_frame_range
from ..formats.atomic import check_replaceable_file
from ..formats.camera import centred_intrinsics, head_to_camera, pose_matrix
from ..formats.errors import BadInput, NoFace
from ..formats.head_file import save_head
from ..heads.default_head import default_head
from .albedo_fusion import FusedAlbedo, fuse_albedo
from .dense_landmarks import DenseEmbedding, embed_dense_landmarks
from .detector_bias import detector_bias
from .frame_choice import frame_coverage
from .identity_basis import IdentityBasis, identity_basis
from .identity_fit import IdentityFit, IdentityFitConfig, fit_identity
from .shading_fit import refine_by_shading

# More than this share of the sampled frames with a second face: whose identity is unclear.
MAX_SHARE_WITH_OTHER_FACES = 0.1


@dataclass(frozen=True)
class FitIdentityConfig:
    """What `fit-identity` does (the command's options); device is a resolved torch device."""

    footage: Path = positional("movie file or folder of images of the actor")
    out: Path = required("head.npz to write: the default head reshaped to the actor")
    frames: str | None = option(None, "A-B, 0-based inclusive source frames (default: all)")
    sample_frames: int = option(120, "frames examined for head angles, evenly over the range")
    identity_frames: int = option(24, "frames the identity is fitted to, chosen to cover the head's turns")
    detector_rounds: int = option(2, "rounds of taking MediaPipe's own face prior out of its points "
                                     "(render the fitted head, detect, correct, fit again)")
    albedo_size: int = option(1024, "texels a side of the albedo fused from the frames (0 keeps the "
                                    "default head's albedo)")
    overwrite: bool = option(False, "replace an existing --out")
    json: Path | None = report_option()
    fit: IdentityFitConfig = nested(IdentityFitConfig)
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.sample_frames < 1 or self.identity_frames < 1:
            raise BadInput(f"--sample-frames {self.sample_frames} --identity-frames "
                           f"{self.identity_frames}: both must be 1 or more")
        if self.detector_rounds < 0:
            raise BadInput(f"--detector-rounds {self.detector_rounds}: must be 0 or more")
        if self.albedo_size != 0 and not 64 <= self.albedo_size <= 4096:
            raise BadInput(f"--albedo-size {self.albedo_size}: use 0 (keep the default albedo) or 64-4096")


@dataclass
class SampledFaces:
    """frames (S,) source indices with a face; points (S, 478, 2) its most prominent face's
    points; sampled: how many frames were looked at; with_other_faces (M,) source indices of
    frames showing more than one face."""

    frames: np.ndarray
    points: np.ndarray
    sampled: int
    with_other_faces: np.ndarray


def sample_faces(footage: Footage, first: int, last: int, count: int, sink: EventSink) -> SampledFaces:
    """MediaPipe's 478 points on `count` frames spread evenly over first..last."""
    from ..landmarks.mediapipe_detector import MediaPipeMesh

    wanted = np.unique(np.linspace(first, last, min(count, last - first + 1)).round().astype(np.int64))
    frames, points, crowded = [], [], []
    mesh = MediaPipeMesh(video=False, max_faces=2)
    try:
        done = 0
        for index, image in footage.frames(first, last):
            if index not in wanted:
                continue
            faces = mesh.faces(image)
            if faces:
                frames.append(index)
                points.append(faces[0])
            if len(faces) > 1:
                crowded.append(index)
            done += 1
            sink.progress("detect", done, len(wanted))
    finally:
        mesh.close()
    return SampledFaces(np.array(frames, np.int64), np.array(points, np.float32).reshape(-1, 478, 2),
                        len(wanted), np.array(crowded, np.int64))


def read_frames(footage: Footage, indices: np.ndarray) -> np.ndarray:
    """(len(indices), H, W, 3) uint8 RGB frames at the sorted source indices."""
    wanted = {int(i) for i in indices}
    return np.stack([image for index, image in footage.frames(int(indices.min()), int(indices.max()))
                     if index in wanted])


def run_fit_identity(config: FitIdentityConfig, sink: EventSink) -> tuple[Path, dict]:
    """Fit, write --out, return (its path, the report)."""
    check_replaceable_file(config.out, config.overwrite)
    footage = Footage(config.footage)
    first, last = parse_frame_range(config.frames, footage.info.frame_count)
    start = time.perf_counter()
    sampled = sample_faces(footage, first, last, config.sample_frames, sink)
    seconds = {"detect": time.perf_counter() - start}
    if len(sampled.frames) == 0:
        raise NoFace(f"footage {config.footage}: no face found on any of the {sampled.sampled} "
                     f"frames examined in {first}-{last}; pass --frames where the actor is in view")
    if len(sampled.with_other_faces) > MAX_SHARE_WITH_OTHER_FACES * sampled.sampled:
        shown = ", ".join(str(i) for i in sampled.with_other_faces[:8])
        raise BadInput(f"footage {config.footage}: {len(sampled.with_other_faces)} of the "
                       f"{sampled.sampled} frames examined show more than one face (frames "
                       f"{shown}...): whose identity to fit is unclear; pass --frames where only "
                       "the actor is in view, or crop the footage to the actor")

    head = default_head()
    basis = identity_basis()
    embedding = embed_dense_landmarks(head)
    template = embedding.points(head.vertices, head.faces)
    width, height = footage.info.width, footage.info.height
    coverage = frame_coverage(sampled.points, template, embedding.mask, width, height,
                              config.identity_frames)
    for warning in coverage.warnings:
        sink.warning(warning)
    points = sampled.points[coverage.chosen]
    rounds = config.detector_rounds + 1
    start = time.perf_counter()

    def fit_round(targets: np.ndarray, round_index: int) -> IdentityFit:
        def on_step(done: int, total: int) -> None:
            sink.progress("fit identity", round_index * total + done, rounds * total)

        return fit_identity(head, basis, embedding, targets, width, height, config.fit,
                            config.device, on_step=on_step)

    fit = fit_round(points, 0)
    targets = points
    if config.detector_rounds:
        from ..landmarks.mediapipe_detector import MediaPipeMesh

        mesh = MediaPipeMesh(video=False)
        try:
            for round_index in range(1, rounds):
                bias = detector_bias(head, basis.reshaped(head, fit.coefficients).vertices, fit,
                                     embedding, width, height, mesh)
                targets = points - bias
                fit = fit_round(targets, round_index)
        finally:
            mesh.close()
    seconds["fit"] = time.perf_counter() - start
    images = None
    if config.fit.shading_steps:
        start = time.perf_counter()
        images = read_frames(footage, sampled.frames[coverage.chosen])
        fit = refine_by_shading(head, basis, embedding, fit, targets, images, config.fit, config.device,
                                on_step=lambda done, total: sink.progress("shading", done, total))
        seconds["shading"] = time.perf_counter() - start
    personal = basis.reshaped(head, fit.coefficients)
    fused = None
    if config.albedo_size:
        start = time.perf_counter()
        sink.progress("albedo", 0, 1)
        if images is None:
            images = read_frames(footage, sampled.frames[coverage.chosen])
        posed = personal.vertices[None] + np.einsum("fk,kvc->fvc", fit.weights, personal.blendshapes)
        fused = fuse_albedo(personal, images, head_to_camera(posed, pose_matrix(fit.rotation, fit.translation)),
                            centred_intrinsics(fit.focal, width, height), config.albedo_size, config.device)
        personal.albedo = fused.albedo
        sink.progress("albedo", 1, 1)
        seconds["albedo"] = time.perf_counter() - start
    save_head(personal, config.out)
    report = identity_report(config, sampled, coverage.chosen, coverage.yaw_span_deg, fit, basis,
                             embedding, fused, coverage.warnings, seconds)
    return config.out, report


def identity_report(config: FitIdentityConfig, sampled: SampledFaces, chosen: np.ndarray,
                    yaw_span_deg: float, fit: IdentityFit, basis: IdentityBasis,
                    embedding: DenseEmbedding, fused: FusedAlbedo | None, warnings: list[str],
                    seconds: dict[str, float]) -> dict:
    """What was fitted, to what, how well: the command's JSON report."""
    order = np.argsort(-np.abs(fit.coefficients))
    return {
        "footage": str(config.footage),
        "head": str(config.out),
        "settings": {"frames": config.frames, "sample_frames": config.sample_frames,
                     "identity_frames": config.identity_frames, "detector_rounds": config.detector_rounds,
                     "albedo_size": config.albedo_size, **asdict(config.fit)},
        "frames_examined": sampled.sampled,
        "frames_with_face": len(sampled.frames),
        "frames_fitted": [int(i) for i in sampled.frames[chosen]],
        "yaw_span_deg": round(yaw_span_deg, 1),
        "points_fitted": int(embedding.mask.sum()),
        "residual_px": {"mean": round(float(fit.residual_px.mean()), 3),
                        "max": round(float(fit.residual_px.max()), 3)},
        "focal_px": round(fit.focal, 1),
        "largest_coefficients": {basis.names[i]: round(float(fit.coefficients[i]), 3)
                                 for i in order[:12] if abs(fit.coefficients[i]) > 1e-3},
        "rest_shape_change_mm": {
            "mean": round(float(np.linalg.norm(basis.deltas(fit.coefficients), axis=1).mean() * 1000), 2),
            "max": round(float(np.linalg.norm(basis.deltas(fit.coefficients), axis=1).max() * 1000), 2)},
        "albedo": None if fused is None else {
            "observed_fraction": round(fused.observed_fraction, 3),
            "observed_face_fraction": round(fused.observed_face_fraction, 3),
            "mirrored_fraction": round(fused.mirrored_fraction, 3)},
        "warnings": warnings,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }
