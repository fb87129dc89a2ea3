"""Render a performance clip of a head with Cycles and write its ground truth.

A Blender-side program run as its own process (stdlib, bpy and numpy only):

    python -m blender_addon.render_clip --head HEAD.npz --performance PERFORMANCE.npz --out DIR
        [--width 320 --height 320] [--samples 16] [--seed 0]
        [--light coloured|studio|hard|environment] [--background room|plain|world]
        [--lens-mm MM] [--motion-blur SHUTTER] [--overwrite]

The head performs the given performance (per-frame blendshape weights and rigid head motion,
see backend.protocol PERFORMANCE_KEYS) in front of a static camera. Weights drive shape keys and
the motion drives the object, both as linear keyframes, so Cycles' motion blur sees the motion
between frames. The domain is chosen by options: the light rig, the surroundings, the lens
(35 mm-equivalent focal length; the camera distance keeps the face's size in the frame) and
the shutter. DIR receives `frames/NNNNNN.png` (RGB, 8 bit), `truth.npz` (TRUTH_KEYS: what the
tracker should recover) and `clip.json`. Everything is rendered into a temporary sibling
directory that is renamed to DIR only when complete.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import bpy
import numpy as np

from backend.protocol import (
    ERROR_BAD_INPUT,
    ERROR_CANCELLED,
    EXIT_CODES,
    HEAD_REQUIRED_KEYS,
    NUM_LANDMARKS,
    PERFORMANCE_KEYS,
    frames_label,
)
from blender_addon.camera_conversion import intrinsics_from_blender_camera, opencv_pose_from_blender
from blender_addon.clip_scene import (
    BACKGROUNDS,
    LIGHTS,
    add_camera,
    add_head,
    add_lights,
    add_surroundings,
    configure_render,
    face_frame,
)
from blender_addon.keyframes import new_channelbag, set_keys, set_transform_keys

# The evaluated mesh must reproduce truth.npz's vertices: shape keys store basis + delta in
# float32, so their sum differs from the numpy one by rounding only.
TRUTH_TOLERANCE_M = 1e-5

CANCEL = threading.Event()  # set by SIGTERM, polled between frames


class Cancelled(Exception):
    """SIGTERM arrived: stop after the current frame and remove the partial output."""


class BadInput(Exception):
    """The command line or the head file cannot be rendered."""


@dataclass(frozen=True)
class Head:
    """The parts of a head file the renderer needs (see backend.protocol HEAD_REQUIRED_KEYS)."""

    vertices: np.ndarray  # (V, 3) float32, head space, metres
    faces: np.ndarray  # (T, 3) int32
    uv: np.ndarray  # (U, 2) float32, origin bottom-left
    uv_faces: np.ndarray  # (T, 3) int32
    blendshapes: np.ndarray  # (K, V, 3) float32 deltas, metres
    names: tuple[str, ...]  # (K,) ARKit names
    landmark_vertex: np.ndarray  # (68,) int32
    landmark_mask: np.ndarray  # (68,) bool
    albedo: np.ndarray | None  # (H, W, 3) uint8, row 0 = top (v = 1)


# --- input -------------------------------------------------------------------------------


def load_head(path: Path) -> Head:
    """Read and check a head file; raises BadInput naming the first problem found."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise BadInput(f"cannot read head file {path}: {exc}") from exc
    with data:
        missing = [k for k in HEAD_REQUIRED_KEYS if k not in data.files]
        if missing:
            raise BadInput(f"head file {path} lacks {', '.join(missing)}")
        head = Head(
            vertices=np.asarray(data["vertices"], np.float32),
            faces=np.asarray(data["faces"], np.int32),
            uv=np.asarray(data["uv"], np.float32),
            uv_faces=np.asarray(data["uv_faces"], np.int32),
            blendshapes=np.asarray(data["blendshapes"], np.float32),
            names=tuple(str(n) for n in data["blendshape_names"]),
            landmark_vertex=np.asarray(data["landmark_vertex"], np.int32),
            landmark_mask=np.asarray(data["landmark_mask"], bool),
            albedo=np.asarray(data["albedo"], np.uint8) if "albedo" in data.files else None,
        )
    _check_head(head)
    return head


def _check_head(head: Head) -> None:
    """Raise BadInput unless the arrays of `head` have consistent shapes and indices."""
    n_verts, n_uv = len(head.vertices), len(head.uv)
    checks = [
        (head.vertices.ndim == 2 and head.vertices.shape[1] == 3, "vertices must be (V, 3)"),
        (head.faces.ndim == 2 and head.faces.shape[1] == 3, "faces must be (T, 3) triangles"),
        (head.uv_faces.shape == head.faces.shape, "uv_faces must match faces"),
        (head.uv.ndim == 2 and head.uv.shape[1] == 2, "uv must be (U, 2)"),
        (head.blendshapes.shape == (len(head.names), n_verts, 3), "blendshapes must be (K, V, 3)"),
        (head.landmark_vertex.shape == (NUM_LANDMARKS,), "landmark_vertex must be (68,)"),
        (head.landmark_mask.shape == (NUM_LANDMARKS,), "landmark_mask must be (68,)"),
        (head.landmark_mask.any(), "landmark_mask masks every landmark"),
        (
            head.albedo is None or (head.albedo.ndim == 3 and head.albedo.shape[2] == 3),
            "albedo must be (H, W, 3)",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise BadInput(f"bad head file: {message}")
    for name, index, size in (
        ("faces", head.faces, n_verts),
        ("uv_faces", head.uv_faces, n_uv),
        ("landmark_vertex", head.landmark_vertex, n_verts),
    ):
        if index.size and (index.min() < 0 or index.max() >= size):
            raise BadInput(f"bad head file: {name} indexes outside [0, {size})")


def load_performance(path: Path, head: Head) -> tuple[np.ndarray, np.ndarray, float, str]:
    """Read performance.npz for `head`: weights (F, K) on the head's K channels (channels the
    performance leaves out stay 0), head motion (F, 4, 4) head -> world, fps, and its source.
    Raises BadInput naming the file and the problem."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in PERFORMANCE_KEYS if k not in data.files]
            if missing:
                raise BadInput(f"performance file {path} lacks {', '.join(missing)}")
            given = np.asarray(data["weights"], np.float32)
            names = [str(n) for n in data["weight_names"]]
            motion = np.asarray(data["head_motion"], np.float64)
            fps = float(data["fps"])
            source = str(data["source"]) if "source" in data.files else ""
    except (OSError, ValueError) as exc:
        raise BadInput(f"cannot read performance file {path}: {exc}") from exc
    frames = len(given)
    if frames < 1 or given.shape != (frames, len(names)):
        raise BadInput(f"performance file {path}: weights must be (F, K) with F >= 1 and K = "
                       f"{len(names)} names, got {given.shape}")
    if motion.shape != (frames, 4, 4):
        raise BadInput(f"performance file {path}: head_motion must be ({frames}, 4, 4), got "
                       f"{motion.shape}")
    if not (np.isfinite(given).all() and given.min() >= 0 and given.max() <= 1):
        raise BadInput(f"performance file {path}: weights must be finite and in [0, 1]")
    if not fps > 0:
        raise BadInput(f"performance file {path}: fps must be positive, got {fps}")
    unknown = sorted(set(names) - set(head.names))
    if unknown:
        raise BadInput(f"performance file {path} drives channels the head lacks: "
                       f"{', '.join(unknown[:5])}")
    weights = np.zeros((frames, len(head.names)), np.float32)
    for column, name in enumerate(names):
        weights[:, head.names.index(name)] = given[:, column]
    return weights, motion, fps, source


def animate_head(head_obj: bpy.types.Object, head: Head, weights: np.ndarray,
                 motion: np.ndarray) -> None:
    """Linear keyframes at frames 0..F-1: a shape key per channel that moves, valued by
    weights (F, K), and the object's location and rotation from motion (F, 4, 4)."""
    moving = np.flatnonzero(weights.max(0) > 0)
    head_obj.shape_key_add(name="Basis", from_mix=False)
    frames = np.arange(len(weights))
    keys = head_obj.data.shape_keys
    _, channelbag = new_channelbag(keys, "KEY", "Performance weights")
    for k in moving:
        block = head_obj.shape_key_add(name=head.names[k], from_mix=False)
        block.data.foreach_set("co", (head.vertices + head.blendshapes[k]).ravel())
        block.value = 0.0  # a new key starts at 1 in this build
        curve = channelbag.fcurves.new(f'key_blocks["{head.names[k]}"].value')
        set_keys(curve, frames, weights[:, k], "LINEAR")
    head_obj.rotation_mode = "QUATERNION"
    _, channelbag = new_channelbag(head_obj, "OBJECT", "Performance motion")
    set_transform_keys(channelbag, "", frames, motion)


def build_scene(head: Head, args: argparse.Namespace) -> tuple[bpy.types.Object, bool, float]:
    """A fresh scene with the head, camera, lights and surroundings. Returns the head object,
    whether frames are denoised and the camera's distance to the face centre (m)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    denoised = configure_render(args.width, args.height, args.samples, args.seed, args.motion_blur)
    scene_rng = np.random.default_rng([args.seed, 1])
    centre, length = face_frame(head.vertices, head.vertices[head.landmark_vertex[head.landmark_mask]])
    half_view, distance = add_camera(centre, length, args.width, args.height, args.lens_mm)
    add_lights(args.light, centre)
    add_surroundings(args.background, args.light, centre, half_view, distance, scene_rng)
    head_obj = add_head(head.vertices, head.faces, head.uv, head.uv_faces, head.albedo)
    return head_obj, denoised, distance


def project(points: np.ndarray, pose: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Pixel coordinates (N, 2) of head-space points (N, 3) under pose (4, 4), intrinsics (3, 3)."""
    cam = points @ pose[:3, :3].T + pose[:3, 3]
    pix = cam @ intrinsics.T
    return pix[:, :2] / pix[:, 2:3]


# --- rendering and output ----------------------------------------------------------------


def _matrix(obj: bpy.types.Object) -> np.ndarray:
    """The evaluated world matrix (4, 4) float64 of `obj`, as the renderer sees it."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    return np.array(obj.evaluated_get(depsgraph).matrix_world, dtype=np.float64)


def _evaluated_vertices(obj: bpy.types.Object) -> np.ndarray:
    """(V, 3) float32 object-space vertices of `obj` after shape keys, as the renderer sees them."""
    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = evaluated.to_mesh()
    try:
        coords = np.empty(len(mesh.vertices) * 3, np.float32)
        mesh.vertices.foreach_get("co", coords)
    finally:
        evaluated.to_mesh_clear()
    return coords.reshape(-1, 3)


def render_frames(head_obj: bpy.types.Object, vertices: np.ndarray, frames_dir: Path,
                  ) -> tuple[np.ndarray, float]:
    """Render frames 0..F-1 of the animated scene to frames_dir/NNNNNN.png, checking at each that
    the evaluated mesh matches the truth vertices (F, V, 3). Returns the head->world matrices
    (F, 4, 4) Blender used and the largest vertex deviation from the truth, metres."""
    scene = bpy.context.scene
    n_frames = len(vertices)
    used = np.empty((n_frames, 4, 4))
    deviation = 0.0
    for i in range(n_frames):
        if CANCEL.is_set():
            raise Cancelled
        scene.frame_set(i)  # also drives the animated noise seed
        used[i] = _matrix(head_obj)
        deviation = max(deviation, float(np.abs(_evaluated_vertices(head_obj) - vertices[i]).max()))
        if deviation > TRUTH_TOLERANCE_M:
            raise RuntimeError(f"frame {i}: the rendered mesh is {deviation:.2e} m off the truth")
        scene.render.filepath = str(frames_dir / f"{frames_label(i)}.png")
        bpy.ops.render.render(write_still=True)
        print(f"frame {i + 1}/{n_frames}", file=sys.stderr, flush=True)
    return used, deviation


def render_clip(head: Head, args: argparse.Namespace, work: Path) -> None:
    """Render the clip and write frames/, truth.npz and clip.json into the directory `work`."""
    weights, motion, fps, source = load_performance(args.performance, head)
    n_frames = len(weights)
    vertices = head.vertices + np.einsum("fk,kvc->fvc", weights, head.blendshapes)
    vertices = vertices.astype(np.float32)

    head_obj, denoised, distance = build_scene(head, args)
    animate_head(head_obj, head, weights, motion)
    frames_dir = work / "frames"
    frames_dir.mkdir()
    start = time.perf_counter()
    head_to_world, deviation = render_frames(head_obj, vertices, frames_dir)
    seconds = time.perf_counter() - start

    camera = bpy.context.scene.camera
    data = camera.data
    intrinsics = intrinsics_from_blender_camera(data.lens, data.sensor_width, data.sensor_height,
                                                data.sensor_fit, data.shift_x, data.shift_y,
                                                args.width, args.height)
    head_pose = opencv_pose_from_blender(_matrix(camera)) @ head_to_world
    landmarks = np.stack([project(v[head.landmark_vertex], p, intrinsics)
                          for v, p in zip(vertices, head_pose, strict=True)])
    np.savez(
        work / "truth.npz",
        frames=np.arange(n_frames, dtype=np.int64),
        vertices=vertices,
        head_pose=head_pose.astype(np.float32),
        intrinsics=intrinsics.astype(np.float32),
        weights=weights,
        weight_names=np.array(head.names, dtype=str),
        landmarks_2d=landmarks.astype(np.float32),
        fps=np.float64(fps),
        width=np.int64(args.width),
        height=np.int64(args.height),
    )
    clip = {
        "fps": fps,
        "width": args.width,
        "height": args.height,
        "frames": n_frames,
        "performance": source,
        "seed": args.seed,
        "samples": args.samples,
        "denoised": denoised,
        "light": args.light,
        "background": args.background,
        "lens_mm": args.lens_mm,
        "focal_px": float(intrinsics[0, 0]),
        "camera_distance_m": round(distance, 4),
        "motion_blur": args.motion_blur,
        "truth_vertex_deviation_m": deviation,
        "render_seconds": round(seconds, 3),
    }
    (work / "clip.json").write_text(json.dumps(clip, indent=2) + "\n")


def publish(work: Path, out: Path, overwrite: bool) -> None:
    """Move the finished `work` directory to `out`, replacing an old `out` if allowed."""
    if not out.exists():
        work.rename(out)
        return
    if not overwrite:
        raise BadInput(f"{out} exists (use --overwrite to replace it)")
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    out.rename(old / out.name)
    work.rename(out)
    shutil.rmtree(old)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line arguments; argparse exits with status 2 on malformed ones."""
    parser = argparse.ArgumentParser(
        prog="python -m blender_addon.render_clip",
        description="Render a performance clip of a head (Cycles, CPU) with its ground truth.",
    )
    parser.add_argument("--head", type=Path, required=True, help="head.npz to render")
    parser.add_argument("--performance", type=Path, required=True,
                        help="performance.npz: per-frame weights and head motion")
    parser.add_argument("--out", type=Path, required=True, help="output directory (created)")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=320)
    parser.add_argument("--samples", type=int, default=16, help="Cycles samples per pixel")
    parser.add_argument("--seed", type=int, default=0, help="scene and noise seed")
    parser.add_argument("--light", choices=LIGHTS, default="coloured",
                        help="light rig: coloured key/fill/rim, even studio, a hard sun, or the "
                        "environment only")
    parser.add_argument("--background", choices=BACKGROUNDS, default="room",
                        help="cluttered procedural room, a flat grey world (for geometry checks), "
                        "or the environment")
    parser.add_argument("--lens-mm", type=float, default=None,
                        help="35 mm-equivalent focal length; the camera distance keeps the face "
                        "size (default: 0.62 m away)")
    parser.add_argument("--motion-blur", type=float, default=0.0,
                        help="shutter as a fraction of the frame interval (0: none)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = parser.parse_args(argv)
    for name in ("width", "height", "samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be positive")
    if args.seed < 0:
        parser.error("--seed must be non-negative")
    if args.lens_mm is not None and not 8 <= args.lens_mm <= 400:
        parser.error("--lens-mm must be between 8 and 400")
    if not 0 <= args.motion_blur <= 1:
        parser.error("--motion-blur must be in [0, 1]")
    return args


def _request_cancel(signum: int, frame: FrameType | None) -> None:
    """SIGTERM handler: flag the render loop to stop. Raising here would not unwind it: the
    handler runs inside Cycles' Python render callback, which Blender reports and swallows."""
    CANCEL.set()


def main(argv: list[str] | None = None) -> int:
    """Run the program; returns the process exit status (0 on success)."""
    args = parse_args(argv)
    out = args.out.resolve()
    try:
        if out.exists() and not args.overwrite:
            raise BadInput(f"{out} exists (use --overwrite to replace it)")
        head = load_head(args.head)
        out.parent.mkdir(parents=True, exist_ok=True)
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CODES[ERROR_BAD_INPUT]
    signal.signal(signal.SIGTERM, _request_cancel)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        render_clip(head, args, work)
        publish(work, out, args.overwrite)
    except (Cancelled, KeyboardInterrupt):
        print("error: cancelled", file=sys.stderr)
        return EXIT_CODES[ERROR_CANCELLED]
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CODES[ERROR_BAD_INPUT]
    finally:
        shutil.rmtree(work, ignore_errors=True)  # gone already when published
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
