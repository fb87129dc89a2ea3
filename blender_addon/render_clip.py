"""Render a performance clip of a head with Cycles and write its ground truth.

A Blender-side program run as its own process (stdlib, bpy and numpy only):

    <blender python> blender_addon/run_program.py render_clip --head HEAD.npz \
        --performance PERFORMANCE.npz --out DIR
        [--width 320 --height 320] [--samples 16] [--seed 0]
        [--light coloured|studio|hard|environment] [--background room|plain|world]
        [--lens-mm MM] [--motion-blur SHUTTER] [--occluder none|glasses|hand] [--overwrite]

The head performs the given performance (per-frame blendshape weights and rigid head motion,
see backend/formats/clip_files.py) in front of a static camera. Weights drive shape keys and
the motion drives the object, both as linear keyframes, so Cycles' motion blur sees the motion
between frames. The domain is chosen by options: the light rig, the surroundings, the lens
(35 mm-equivalent focal length; the camera distance keeps the face's size in the frame) and
the shutter, and what partly covers the face (glasses worn by the head, or a hand moving in
front of the lower face; clip.json then counts the landmarks it hides per frame). DIR
receives `frames/NNNNNN.png` (RGB, 8 bit), `truth.npz` (what the tracker should recover) and
`clip.json`. Everything is rendered into a temporary sibling directory that is renamed to DIR
only when complete.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import bpy
import numpy as np

from ..backend.formats import protocol
from ..backend.formats.atomic import DirectoryKind, atomic_directory, check_replaceable
from ..backend.formats.camera import project_points
from ..backend.formats.clip_files import TRUTH_FILE, Truth, load_performance
from ..backend.formats.errors import BadInput
from ..backend.formats.head_file import HeadAsset, load_head
from ..backend.formats.results_dir import frame_label
from .camera_conversion import intrinsics_from_blender_camera, opencv_pose_from_blender
from .clip_scene import (
    BACKGROUNDS,
    LIGHTS,
    OCCLUDERS,
    add_camera,
    add_head,
    add_lights,
    add_occluder,
    add_surroundings,
    configure_render,
    face_frame,
    occluded_landmarks,
)
from .keyframes import new_channelbag, set_keys, set_transform_keys

# The evaluated mesh must reproduce truth.npz's vertices: shape keys store basis + delta in
# float32, so their sum differs from the numpy one by rounding only.
TRUTH_TOLERANCE_M = 1e-5

CANCEL = threading.Event()  # set by SIGTERM, polled between frames
CLIP_JSON = "clip.json"
FRAMES_DIR = "frames"
# What --overwrite may replace: a folder this program rendered, never the head or performance
# it reads nor a folder of other files.
RENDERED_CLIP = DirectoryKind("rendered clip folder (render_clip)", CLIP_JSON, "render_seconds",
                              frozenset({CLIP_JSON, FRAMES_DIR, TRUTH_FILE}))


class Cancelled(Exception):
    """SIGTERM arrived: stop after the current frame and remove the partial output."""


def performance_weights(path: Path, head: HeadAsset) -> tuple[np.ndarray, np.ndarray, float, str]:
    """The performance in `path` on `head`'s channels: weights (F, K), head motion (F, 4, 4)
    head -> world, fps and its source. BadInput naming the file and the problem."""
    performance = load_performance(path)
    return (performance.on_channels(head.blendshape_names), performance.head_motion,
            performance.fps, performance.source)


def check_renderable(head: HeadAsset, path: Path) -> None:
    """A clip's truth needs landmarks: refuse a head that can place none."""
    if not head.landmark_mask.any():
        raise BadInput(f"head file {path}: field 'landmark_mask' masks every landmark")


def animate_head(head_obj: bpy.types.Object, head: HeadAsset, weights: np.ndarray,
                 motion: np.ndarray) -> None:
    """Linear keyframes at frames 0..F-1: a shape key per channel that moves, valued by
    weights (F, K), and the object's location and rotation from motion (F, 4, 4)."""
    moving = np.flatnonzero(weights.max(0) > 0)
    head_obj.shape_key_add(name="Basis", from_mix=False)
    frames = np.arange(len(weights))
    keys = head_obj.data.shape_keys
    _, channelbag = new_channelbag(keys, "KEY", "Performance weights")
    for k in moving:
        block = head_obj.shape_key_add(name=head.blendshape_names[k], from_mix=False)
        block.data.foreach_set("co", (head.vertices + head.blendshapes[k]).ravel())
        block.value = 0.0  # a new key starts at 1 in this build
        curve = channelbag.fcurves.new(f'key_blocks["{head.blendshape_names[k]}"].value')
        set_keys(curve, frames, weights[:, k], "LINEAR")
    head_obj.rotation_mode = "QUATERNION"
    _, channelbag = new_channelbag(head_obj, "OBJECT", "Performance motion")
    set_transform_keys(channelbag, "", frames, motion)


def build_scene(head: HeadAsset, args: argparse.Namespace) -> tuple[bpy.types.Object, bool, float]:
    """A fresh scene with the head, camera, lights and surroundings. Returns the head object,
    whether frames are denoised and the camera's distance to the face centre (m)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    denoised = configure_render(args.width, args.height, args.samples, args.seed, args.motion_blur)
    scene_rng = np.random.default_rng([args.seed, 1])
    centre, length = face_frame(head.vertices, head.vertices[head.landmark_vertex[head.landmark_mask]])
    half_view, distance = add_camera(centre, length, args.width, args.height, args.lens_mm)
    add_lights(args.light, centre)
    add_surroundings(args.background, args.light, centre, half_view, distance, scene_rng)
    head_obj = add_head(head)
    return head_obj, denoised, distance


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
                  landmark_vertex: np.ndarray | None = None) -> tuple[np.ndarray, float, np.ndarray]:
    """Render frames 0..F-1 of the animated scene to frames_dir/NNNNNN.png, checking at each that
    the evaluated mesh matches the truth vertices (F, V, 3). Returns the head->world matrices
    (F, 4, 4) Blender used, the largest vertex deviation from the truth, metres, and (F, M) bool:
    which of the vertices `landmark_vertex` (M,) an occluder hides per frame (all False when
    None is given)."""
    scene = bpy.context.scene
    n_frames = len(vertices)
    used = np.empty((n_frames, 4, 4))
    deviation = 0.0
    hidden = np.zeros((n_frames, 0 if landmark_vertex is None else len(landmark_vertex)), bool)
    for i in range(n_frames):
        if CANCEL.is_set():
            raise Cancelled
        scene.frame_set(i)  # also drives the animated noise seed
        used[i] = _matrix(head_obj)
        if landmark_vertex is not None:
            world = vertices[i, landmark_vertex].astype(np.float64) @ used[i, :3, :3].T + used[i, :3, 3]
            hidden[i] = occluded_landmarks(world)
        deviation = max(deviation, float(np.abs(_evaluated_vertices(head_obj) - vertices[i]).max()))
        if deviation > TRUTH_TOLERANCE_M:
            raise RuntimeError(f"frame {i}: the rendered mesh is {deviation:.2e} m off the truth")
        scene.render.filepath = str(frames_dir / f"{frame_label(i)}.png")
        bpy.ops.render.render(write_still=True)
        print(protocol.event_line(protocol.EVENT_PROGRESS, stage="render", done=i + 1,
                                  total=n_frames, eta_s=None), file=sys.stderr, flush=True)
    return used, deviation, hidden


def render_clip(head: HeadAsset, args: argparse.Namespace, work: Path) -> None:
    """Render the clip and write frames/, truth.npz and clip.json into the directory `work`."""
    weights, motion, fps, source = performance_weights(args.performance, head)
    n_frames = len(weights)
    vertices = head.vertices + np.einsum("fk,kvc->fvc", weights, head.blendshapes)
    vertices = vertices.astype(np.float32)

    head_obj, denoised, distance = build_scene(head, args)
    animate_head(head_obj, head, weights, motion)
    rest_landmarks = head.vertices[head.landmark_vertex].astype(np.float64)
    rest_landmarks[~head.landmark_mask] = np.nan
    occluders = add_occluder(args.occluder, head_obj, rest_landmarks, n_frames)
    placed = head.landmark_vertex[head.landmark_mask]
    frames_dir = work / FRAMES_DIR
    frames_dir.mkdir()
    start = time.perf_counter()
    head_to_world, deviation, hidden = render_frames(head_obj, vertices, frames_dir,
                                                     placed if occluders else None)
    seconds = time.perf_counter() - start

    camera = bpy.context.scene.camera
    data = camera.data
    intrinsics = intrinsics_from_blender_camera(data.lens, data.sensor_width, data.sensor_height,
                                                data.sensor_fit, data.shift_x, data.shift_y,
                                                args.width, args.height)
    head_pose = opencv_pose_from_blender(_matrix(camera)) @ head_to_world
    landmarks = project_points(vertices[:, head.landmark_vertex], head_pose, intrinsics)
    Truth(frames=np.arange(n_frames, dtype=np.int64), vertices=vertices, head_pose=head_pose,
          intrinsics=intrinsics, weights=weights, weight_names=tuple(head.blendshape_names),
          landmarks_2d=landmarks, fps=fps, width=args.width, height=args.height,
          ).save(work / TRUTH_FILE)
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
        "occluder": args.occluder,
        # Per frame, how many of the head's placed landmarks the occluder hides from the camera.
        "occluded_landmarks": hidden.sum(1).tolist() if occluders else [0] * n_frames,
        "placed_landmarks": len(placed),
        "truth_vertex_deviation_m": deviation,
        "render_seconds": round(seconds, 3),
    }
    (work / CLIP_JSON).write_text(json.dumps(clip, indent=2, allow_nan=False) + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line arguments; argparse exits with status 2 on malformed ones."""
    parser = argparse.ArgumentParser(
        prog="render_clip",
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
    parser.add_argument("--occluder", choices=OCCLUDERS, default="none",
                        help="what partly covers the face: glasses worn by the head, or a hand "
                        "moving in front of the lower face")
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
    bad_input = protocol.EXIT_CODES[protocol.ERROR_BAD_INPUT]
    inputs = (args.head, args.performance)
    try:
        check_replaceable(out, args.overwrite, RENDERED_CLIP, inputs)
        head = load_head(args.head)
        check_renderable(head, args.head)
        performance_weights(args.performance, head)  # refused before any rendering
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return bad_input
    signal.signal(signal.SIGTERM, _request_cancel)
    try:
        with atomic_directory(out, args.overwrite, RENDERED_CLIP, inputs) as work:
            render_clip(head, args, work)
    except (Cancelled, KeyboardInterrupt):
        print("error: cancelled", file=sys.stderr)
        return protocol.EXIT_CODES[protocol.ERROR_CANCELLED]
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return bad_input
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
