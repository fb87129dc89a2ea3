"""`python -m backend bake-textures RESULTS --camera CAMERA.json`: the DAM's view-dependent
textures decoded for another camera, for rendering the tracked avatar in a new shot.

The camera file (DESIGN.md "Conventions": per source frame, head space -> camera) says where
the camera is relative to the head on each frame; each frame's latent code in the results'
tracking.npz is decoded for that view and written to textures/<view>/NNNNNN.png inside the
results directory, atomically (a temp folder renamed into place).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config_parser import option, positional, required
from .events import EventSink
from .formats.atomic import atomic_directory
from .formats.camera_file import CameraFile, load_camera_file
from .formats.errors import BadInput
from .formats.results_dir import PROJECTED_TEXTURES, TEXTURES_DIR, Results, read_results

# result.json's record of the DAM a tracker decoded with (dam.model_folder.model_record).
DAM_MODEL_FIELD = "dam_model"
VIEW_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
RESERVED_VIEWS = (PROJECTED_TEXTURES,)  # footage unwrapped by track, not a decoded view


@dataclass(frozen=True)
class BakeTexturesConfig:
    results: Path = positional("results directory tracked by a DAM tracker (with latent codes)")
    camera: Path = required("per-frame camera file: {width, height, intrinsics, frames: {source "
                            "frame: 4x4 head space -> camera}}")
    view: str | None = option(None, "name of the view folder textures/<view> (default: the camera "
                                    "file's stem)")
    model: str | None = option(None, "model the results were tracked with: 'default', a name or a "
                                     "folder (default: the one result.json records, else 'default')")
    overwrite: bool = option(False, "replace an existing textures/<view>")
    batch: int = 16  # frames decoded at once
    device: str = "cpu"


def view_name(config: BakeTexturesConfig) -> str:
    """--view, else the camera file's stem; BadInput for names that are no simple identifier
    (letters, digits, '_' and '-', up to 64) or are reserved ("projected")."""
    name = config.view if config.view is not None else Path(config.camera).stem
    origin = "--view" if config.view is not None else f"the camera file's name ({Path(config.camera).name})"
    if not VIEW_NAME.match(name):
        raise BadInput(f"{origin} gives the view name {name!r}: a view name is letters, digits, "
                       "'_' and '-' (up to 64, starting with a letter or digit); pass --view NAME")
    if name in RESERVED_VIEWS:
        raise BadInput(f"{origin} gives the view name {name!r}, which is the footage unwrapped by "
                       "track (textures/projected), not a decoded view; pass another --view")
    return name


def results_latent(results: Results) -> np.ndarray:
    """tracking.npz's latent (F, Z); BadInput for results a DAM tracker did not write."""
    latent = results.tracking.get("latent")
    if latent is None:
        raise BadInput(f"the results in {results.directory} hold no latent codes (tracker "
                       f"{results.document.get('tracker', 'unknown')}): only a DAM tracker "
                       "(--tracker encoder) writes them, and textures are decoded from them; "
                       "re-track the clip with --tracker encoder")
    return latent


def camera_rows(results: Results, camera: CameraFile, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(source frame indices (N,) in increasing order, their rows in the results (N,));
    BadInput naming the camera file's frames the results lack, or poses that cannot be inverted."""
    frames = np.array(sorted(camera.poses), np.int64)
    tracked = results.frames
    missing = frames[~np.isin(frames, tracked)]
    if len(missing):
        shown = ", ".join(str(f) for f in missing[:10]) + (", ..." if len(missing) > 10 else "")
        raise BadInput(f"camera file {path} has {len(missing)} frame(s) the results in "
                       f"{results.directory} lack: {shown} (the results hold source frames "
                       f"{int(tracked[0])}-{int(tracked[-1])}, {len(tracked)} frames); bake only "
                       "tracked frames or re-track with --frames covering them")
    for frame in frames:
        pose = camera.poses[int(frame)]
        if (np.abs(pose[3] - [0, 0, 0, 1]).max() > 1e-6
                or abs(np.linalg.det(pose[:3, :3])) < 1e-12):
            raise BadInput(f"camera file {path}: field 'frames.{frame}' is not an invertible "
                           "affine pose (bottom row 0 0 0 1); re-export the camera file")
    return frames, np.searchsorted(tracked, frames)


def bake_model_folder(results: Results, spec: str | None, sink: EventSink) -> Path:
    """The model folder to decode with: --model, else the one result.json records
    (field "dam_model": path, then spec), else the default (with a warning). BadInput when the
    results record other weights than the chosen model's: the latent would mean nothing."""
    from .dam.model_folder import model_id, resolve_model

    record = results.document.get(DAM_MODEL_FIELD)
    record = record if isinstance(record, dict) else {}
    if spec is not None:
        folder = resolve_model(spec)
    elif isinstance(record.get("path"), str) and (Path(record["path"]) / "model.json").is_file():
        folder = Path(record["path"])
    elif isinstance(record.get("spec"), str):
        folder = resolve_model(record["spec"])
    else:
        sink.warning(f"{results.directory}/result.json records no model ('{DAM_MODEL_FIELD}'); "
                     "decoding with the default model (pass --model if it was another)")
        folder = resolve_model("default")
    recorded = record.get("weights")
    if isinstance(recorded, str) and recorded != model_id(folder):
        raise BadInput(f"the results in {results.directory} were tracked with the model "
                       f"{record.get('spec', '?')} ({record.get('path', '?')}, weights {recorded}); "
                       f"{folder} holds other weights ({model_id(folder)}), whose latent codes "
                       "mean other faces: pass --model with the model the clip was tracked with")
    return folder


def bake_textures(config: BakeTexturesConfig, sink: EventSink) -> Path:
    """Write textures/<view>/NNNNNN.png into the results directory for every frame of the
    camera file; returns the view folder. Every refusal comes before any decoding."""
    from .dam.model_folder import load_model, load_model_head
    from .decoded_textures import write_decoded_textures

    if config.batch < 1:
        raise BadInput(f"batch {config.batch}: must be 1 or more")
    results = read_results(config.results)
    latent = results_latent(results)
    camera = load_camera_file(config.camera)
    view = view_name(config)
    frames, rows = camera_rows(results, camera, Path(config.camera))
    out = results.directory / TEXTURES_DIR / view
    if (out.exists() or out.is_symlink()) and not config.overwrite:
        raise BadInput(f"{out} already exists; pass --overwrite to replace it or choose another "
                       "--view")
    folder = bake_model_folder(results, config.model, sink)
    head = load_model_head(folder)
    if results.vertices.shape[1] != head.num_vertices or results.topology_hash != head.topology_hash:
        raise BadInput(f"the results in {results.directory} were tracked on a head with "
                       f"{results.vertices.shape[1]} vertices (topology {results.topology_hash}); "
                       f"the model {folder} has {head.num_vertices} vertices (topology "
                       f"{head.topology_hash}): pass --model with the model the clip was tracked with")
    model, _ = load_model(folder, config.device)
    if latent.shape[1] != model.config.latent:
        raise BadInput(f"the results' latent codes have {latent.shape[1]} numbers, the model "
                       f"{folder} decodes {model.config.latent}: pass --model with the model the "
                       "clip was tracked with")
    poses = np.stack([camera.poses[int(f)] for f in frames])
    with atomic_directory(out, config.overwrite) as tmp:
        write_decoded_textures(tmp, latent[rows], poses, frames, model, head, config.device, sink,
                               config.batch)
    sink.log(f"{len(frames)} textures decoded for view {view!r} into {out}")
    return out


def run_bake_textures(config: BakeTexturesConfig, sink: EventSink) -> str:
    """The command: the view folder written."""
    return str(bake_textures(config, sink))
