"""Render a demo performance clip of a head with Cycles and write its ground truth.

A Blender-side program run as its own process (stdlib, bpy and numpy only):

    python -m blender_addon.render_clip --head HEAD.npz --out DIR [--frames 48]
        [--width 320 --height 320] [--fps 24] [--samples 16] [--seed 0]
        [--background room|plain] [--overwrite]

The head performs a smooth, seeded expression trajectory (ARKit blendshape weights) while it
turns about the neck pivot in front of a static camera, lit by a warm key and a cool fill in a
cluttered procedural room. DIR receives `frames/NNNNNN.png` (RGB, 8 bit), `truth.npz` (what the
tracker should recover: per-frame vertices, head pose in OpenCV camera axes, intrinsics,
weights, projected landmarks) and `clip.json`. Everything is rendered into a temporary sibling
directory that is renamed to DIR only when complete.
"""

from __future__ import annotations

import argparse
import json
import math
import os
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
from mathutils import Matrix, Vector

from backend.protocol import (
    ERROR_BAD_INPUT,
    ERROR_CANCELLED,
    EXIT_CODES,
    HEAD_REQUIRED_KEYS,
    NUM_LANDMARKS,
    frames_label,
)
from blender_addon.camera_conversion import (
    fitted_size,
    intrinsics_from_blender_camera,
    opencv_pose_from_blender,
)

CAMERA_DISTANCE_M = 0.62  # camera to face centre
SENSOR_WIDTH_MM = 36.0
WALL_DEPTH_M = 1.6  # face centre to the back wall
FACE_FILL = 0.5  # fraction of the image height taken by the face, chin to hairline
# iBUG landmarks span chin to brows, about two thirds of the face length (chin to hairline).
FACE_LENGTH_PER_LANDMARK_SPAN = 1.5
DEFAULT_SKIN_RGB = (0.78, 0.58, 0.47)  # linear-ish albedo when the head file has none

MAX_YAW_DEG, MAX_PITCH_DEG, MAX_ROLL_DEG = 20.0, 10.0, 5.0
MAX_TRANSLATION_M = 0.01

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


# --- performance -------------------------------------------------------------------------


def _wave(rng: np.random.Generator, t: np.ndarray, lo_hz: float, hi_hz: float) -> np.ndarray:
    """Smooth signal in [-1, 1]: a normalised sum of three random sinusoids. t (F,) seconds."""
    freq = rng.uniform(lo_hz, hi_hz, 3)[:, None]
    phase = rng.uniform(0.0, 2.0 * math.pi, 3)[:, None]
    amp = rng.uniform(0.5, 1.0, 3)[:, None]
    return (amp * np.sin(2.0 * math.pi * freq * t + phase)).sum(0) / amp.sum()


def _activation(
    rng: np.random.Generator, t: np.ndarray, peak: float, lo_hz: float, hi_hz: float
) -> np.ndarray:
    """Smooth activation in [0, peak] (F,): a wave through a smoothstep, so it rests at 0 for a
    while and rises in bumps instead of oscillating about a mid value."""
    x = np.clip((_wave(rng, t, lo_hz, hi_hz) + 0.3) / 1.1, 0.0, 1.0)
    return peak * x * x * (3.0 - 2.0 * x)


def _blinks(rng: np.random.Generator, t: np.ndarray, fps: float) -> np.ndarray:
    """Eyelid closure in [0, 1] (F,): short blinks every 1.5-4 s, the first within 1.2 s.

    A blink closes fast and opens more slowly (asymmetric Gaussian, 50 ms / 90 ms); its centre is
    snapped to a frame so the lids close fully on at least one frame.
    """
    closure = np.zeros_like(t)
    centre = rng.uniform(0.3, 1.2)
    while centre < t[-1] + 0.5:
        c = round(centre * fps) / fps
        sigma = np.where(t < c, 0.05, 0.09)
        closure = np.maximum(closure, np.exp(-0.5 * ((t - c) / sigma) ** 2))
        centre += rng.uniform(1.5, 4.0)
    return closure


def expression_weights(
    names: tuple[str, ...], n_frames: int, fps: float, rng: np.random.Generator
) -> np.ndarray:
    """Per-frame blendshape weights (F, K) float32 in [0, 1] for the channels in `names`.

    A handful of channels move (jaw, smile, blinks, brows, pucker/funnel) with small
    co-activations as in real faces (cheeks and lids squint with a smile, the lower lip follows
    the jaw); channels the head lacks are skipped and every other weight stays 0.
    """
    t = np.arange(n_frames) / fps
    jaw = _activation(rng, t, 0.6, 0.4, 1.6)
    smile = _activation(rng, t, 0.8, 0.15, 0.6)
    smile_tilt = 1.0 + 0.15 * _wave(rng, t, 0.1, 0.3)  # smiles are slightly one-sided
    blink = _blinks(rng, t, fps)
    brow_up = _activation(rng, t, 0.6, 0.2, 0.8)
    brow_down = _activation(rng, t, 0.5, 0.2, 0.8) * (1.0 - brow_up / 0.6)
    # Pursed lips and a smile exclude each other.
    pucker = _activation(rng, t, 0.5, 0.2, 0.7) * (1.0 - smile / 0.8) ** 2
    funnel = _activation(rng, t, 0.4, 0.2, 0.7) * (1.0 - smile / 0.8) ** 2
    channels = {
        "jawOpen": jaw,
        "mouthSmileLeft": smile * smile_tilt,
        "mouthSmileRight": smile / smile_tilt,
        "eyeBlinkLeft": blink,
        "eyeBlinkRight": blink,
        "browInnerUp": brow_up,
        "browOuterUpLeft": 0.4 * brow_up,
        "browOuterUpRight": 0.4 * brow_up,
        "browDownLeft": brow_down,
        "browDownRight": 0.9 * brow_down,
        "mouthPucker": pucker,
        "mouthFunnel": funnel,
        "cheekSquintLeft": 0.35 * smile * smile_tilt,
        "cheekSquintRight": 0.35 * smile / smile_tilt,
        "eyeSquintLeft": 0.2 * smile + 0.2 * brow_down,
        "eyeSquintRight": 0.2 * smile + 0.2 * brow_down,
        "mouthLowerDownLeft": 0.25 * jaw,
        "mouthLowerDownRight": 0.25 * jaw,
    }
    weights = np.zeros((n_frames, len(names)), np.float32)
    for k, name in enumerate(names):
        if name in channels:
            weights[:, k] = np.clip(channels[name], 0.0, 1.0)
    return weights


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head rotation (3, 3) in head axes: yaw about +Z (up), pitch about +X, roll about +Y (the
    viewing axis), radians, applied roll first."""
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    ry = np.array([[cr, 0.0, sr], [0.0, 1.0, 0.0], [-sr, 0.0, cr]])
    return rz @ rx @ ry


def head_motion(n_frames: int, fps: float, rng: np.random.Generator) -> np.ndarray:
    """Rigid head motion (F, 4, 4) float64, head space -> world (the rest head's space).

    Smooth rotation about the neck pivot (the head-space origin) within yaw +-20, pitch +-10,
    roll +-5 degrees, and a translation within +-1 cm per axis.
    """
    t = np.arange(n_frames) / fps
    yaw = math.radians(MAX_YAW_DEG) * _wave(rng, t, 0.2, 0.6)
    pitch = math.radians(MAX_PITCH_DEG) * _wave(rng, t, 0.2, 0.7)
    roll = math.radians(MAX_ROLL_DEG) * _wave(rng, t, 0.1, 0.4)
    shift = MAX_TRANSLATION_M * np.stack([_wave(rng, t, 0.1, 0.5) for _ in range(3)], 1)
    motion = np.tile(np.eye(4), (n_frames, 1, 1))
    for i in range(n_frames):
        motion[i, :3, :3] = _rotation(yaw[i], pitch[i], roll[i])
        motion[i, :3, 3] = shift[i]
    return motion


# --- camera ------------------------------------------------------------------------------


def project(points: np.ndarray, pose: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Pixel coordinates (N, 2) of head-space points (N, 3) under pose (4, 4), intrinsics (3, 3)."""
    cam = points @ pose[:3, :3].T + pose[:3, 3]
    pix = cam @ intrinsics.T
    return pix[:, :2] / pix[:, 2:3]


def face_frame(head: Head) -> tuple[np.ndarray, float]:
    """Face centre (3,) in head space, metres, and face length (chin to hairline), metres."""
    points = head.vertices[head.landmark_vertex[head.landmark_mask]].astype(np.float64)
    z_min, z_max = points[:, 2].min(), points[:, 2].max()
    length = FACE_LENGTH_PER_LANDMARK_SPAN * (z_max - z_min)
    centre = np.array([points[:, 0].mean(), points[:, 1].mean(), z_min + 0.5 * length])
    return centre, length


def add_camera(face_centre: np.ndarray, face_length: float, width: int, height: int) -> np.ndarray:
    """A static camera in front of the face (at -Y, looking along +Y, +Z up) whose focal length
    makes the face fill FACE_FILL of the image height. Returns the tangents (2,) of its
    horizontal and vertical half angles of view."""
    cam = bpy.data.cameras.new("Camera")
    cam.sensor_width = SENSOR_WIDTH_MM
    cam.sensor_fit = "AUTO"
    cam.clip_start, cam.clip_end = 0.05, 50.0
    sensor_mm, fit_px = fitted_size(cam.sensor_fit, cam.sensor_width, cam.sensor_height, width, height)
    focal_px = FACE_FILL * height * CAMERA_DISTANCE_M / face_length
    cam.lens = focal_px * sensor_mm / fit_px
    obj = bpy.data.objects.new("Camera", cam)
    obj.location = Vector(face_centre) + Vector((0.0, -CAMERA_DISTANCE_M, 0.0))
    obj.rotation_euler = (math.pi / 2.0, 0.0, 0.0)  # camera -Z -> world +Y, camera +Y -> +Z
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.scene.camera = obj
    return np.array([width, height]) / (2.0 * focal_px)


# --- scene -------------------------------------------------------------------------------


def _new_material(name: str) -> tuple[bpy.types.Material, bpy.types.NodeTree]:
    """An empty node material and its tree with only a Material Output node."""
    mat = bpy.data.materials.new(name)
    tree = mat.node_tree
    tree.nodes.clear()
    tree.nodes.new("ShaderNodeOutputMaterial")
    return mat, tree


def skin_material(albedo: np.ndarray | None) -> bpy.types.Material:
    """Principled BSDF skin (roughness 0.5, a little specular) whose base colour is the head's
    albedo (H, W, 3) uint8 sampled through the UV map. No subsurface scattering: at 320 pixels
    it barely shows and costs a sixth of the render time."""
    mat, tree = _new_material("Skin")
    bsdf = tree.nodes.new("ShaderNodeBsdfPrincipled")
    bsdf.inputs["Roughness"].default_value = 0.5
    bsdf.inputs["Specular IOR Level"].default_value = 0.3
    tree.links.new(bsdf.outputs["BSDF"], tree.nodes["Material Output"].inputs["Surface"])
    if albedo is None:
        bsdf.inputs["Base Color"].default_value = (*DEFAULT_SKIN_RGB, 1.0)
        return mat
    rows, cols = albedo.shape[:2]
    image = bpy.data.images.new("albedo", cols, rows, alpha=False)
    rgba = np.ones((rows, cols, 4), np.float32)
    rgba[..., :3] = albedo[::-1] / 255.0  # Blender image rows start at the bottom
    image.pixels.foreach_set(rgba.ravel())
    image.pack()  # keep the pixels with the datablock: a generated image would regenerate
    tex = tree.nodes.new("ShaderNodeTexImage")
    tex.image = image
    tex.interpolation = "Linear"
    tree.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    return mat


def add_head(head: Head) -> bpy.types.Object:
    """The head as a smooth-shaded, UV-mapped mesh object at the world origin."""
    mesh = bpy.data.meshes.new("Head")
    mesh.from_pydata(head.vertices.tolist(), [], head.faces.tolist())
    uv_layer = mesh.uv_layers.new(name="UVMap")
    uv_layer.data.foreach_set("uv", head.uv[head.uv_faces].ravel())  # loops follow face corners
    mesh.shade_smooth()
    mesh.materials.append(skin_material(head.albedo))
    obj = bpy.data.objects.new("Head", mesh)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def _aim(obj: bpy.types.Object, target: np.ndarray) -> None:
    """Point an object's -Z axis (where lights shine) at `target` (3,), keeping +Y up."""
    direction = Vector(target) - obj.location
    obj.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()


def add_lights(face_centre: np.ndarray) -> None:
    """A warm key area light from the camera's left, a dim cool fill from its right and a rim
    light from behind: a lit room, not an even studio."""
    rigs = (  # name, offset from the face centre (m), RGB, watts, size (m)
        ("Key", (-0.55, -0.45, 0.35), (1.0, 0.78, 0.55), 25.0, 0.35),
        ("Fill", (0.65, -0.45, -0.05), (0.6, 0.74, 1.0), 3.0, 0.6),
        ("Rim", (0.35, 0.55, 0.45), (1.0, 0.93, 0.85), 20.0, 0.3),
    )
    for name, offset, rgb, watts, size in rigs:
        light = bpy.data.lights.new(name, "AREA")
        light.color, light.energy, light.size = rgb, watts, size
        obj = bpy.data.objects.new(name, light)
        obj.location = Vector(face_centre) + Vector(offset)
        _aim(obj, face_centre)
        bpy.context.scene.collection.objects.link(obj)


def _box(name: str, size: np.ndarray, location: np.ndarray, yaw: float) -> bpy.types.Object:
    """An axis-aligned box object (size (3,), metres) at `location`, turned `yaw` rad about Z."""
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) * size / 2.0
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(corners.tolist(), [], quads)
    obj = bpy.data.objects.new(name, mesh)
    obj.location = Vector(location)
    obj.rotation_euler = (0.0, 0.0, yaw)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def wallpaper(rng: np.random.Generator, rows: int = 256, cols: int = 512) -> np.ndarray:
    """A busy, colourful wall image (rows, cols, 3) float32 linear RGB in [0, 1]: blotches of a
    random palette under scattered rectangles (posters, frames) and rows of books.

    Drawn once in numpy and shown as an image texture: a procedural fBM node costs several
    times more per shading sample than an image lookup.
    """
    y, x = np.mgrid[0:rows, 0:cols] / rows
    palette = np.array([_random_colour(rng) for _ in range(4)])  # (4, 3)
    fields = np.stack(
        [
            sum(
                np.cos(rng.uniform(1, 9) * (x * math.cos(a) + y * math.sin(a)) + rng.uniform(0, 7))
                for a in rng.uniform(0, math.pi, 3)
            )
            for _ in palette
        ]
    )  # (4, rows, cols) smooth random fields
    blend = np.exp(2.0 * fields)
    image = np.einsum("prc,pk->rck", blend / blend.sum(0), palette)
    for _ in range(10):  # posters and frames
        h, w = rng.integers(rows // 10, rows // 3), rng.integers(cols // 20, cols // 6)
        top, left = rng.integers(0, rows - h), rng.integers(0, cols - w)
        image[top : top + h, left : left + w] = _random_colour(rng)
    for _ in range(3):  # shelves of books: narrow vertical strips of random colour
        top, left = rng.integers(0, rows - rows // 8), rng.integers(0, cols - cols // 4)
        while left < cols and rng.uniform() > 0.04:
            w = rng.integers(3, 9)
            h = rng.integers(rows // 14, rows // 8)
            image[top + rows // 8 - h : top + rows // 8, left : left + w] = _random_colour(rng)
            left += w + 1
    return image.astype(np.float32)


def _image_material(name: str, rgb: np.ndarray) -> bpy.types.Material:
    """A diffuse material showing `rgb` (rows, cols, 3) float32 linear, row 0 at the top,
    through the object's generated coordinates (x, z of a wall)."""
    rows, cols = rgb.shape[:2]
    image = bpy.data.images.new(name, cols, rows, alpha=False, float_buffer=True)
    rgba = np.ones((rows, cols, 4), np.float32)
    rgba[..., :3] = rgb[::-1]  # Blender image rows start at the bottom
    image.pixels.foreach_set(rgba.ravel())
    image.pack()
    mat, tree = _new_material(name)
    coords = tree.nodes.new("ShaderNodeTexCoord")
    split = tree.nodes.new("ShaderNodeSeparateXYZ")
    to_uv = tree.nodes.new("ShaderNodeCombineXYZ")  # generated (x, y, z) -> image (u, v) = (x, z)
    tex = tree.nodes.new("ShaderNodeTexImage")
    tex.image = image
    tex.extension = "EXTEND"
    bsdf = tree.nodes.new("ShaderNodeBsdfDiffuse")  # matte, and cheaper than Principled
    tree.links.new(coords.outputs["Generated"], split.inputs["Vector"])
    tree.links.new(split.outputs["X"], to_uv.inputs["X"])
    tree.links.new(split.outputs["Z"], to_uv.inputs["Y"])
    tree.links.new(to_uv.outputs["Vector"], tex.inputs["Vector"])
    tree.links.new(tex.outputs["Color"], bsdf.inputs["Color"])
    tree.links.new(bsdf.outputs["BSDF"], tree.nodes["Material Output"].inputs["Surface"])
    return mat


def _random_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    """A saturated-ish random linear RGB colour of moderate brightness."""
    hue, sat, val = rng.uniform(0, 1), rng.uniform(0.35, 0.85), rng.uniform(0.25, 0.8)
    rgb = np.clip(np.abs((hue * 6.0 + np.array([0.0, 4.0, 2.0])) % 6.0 - 3.0) - 1.0, 0, 1)
    return tuple(float(c) for c in (val * (1.0 - sat + sat * rgb)) ** 2.2)  # sRGB -> linear


def add_room(face_centre: np.ndarray, half_view: np.ndarray, rng: np.random.Generator) -> None:
    """A back wall WALL_DEPTH_M behind the face, filling the view (half_view (2,): tangents of
    the horizontal and vertical half angles) with a busy wallpaper, a few coloured boxes between
    it and the head (never in front of the head), and a dim sky-like world."""
    wall_distance = CAMERA_DISTANCE_M + WALL_DEPTH_M
    wall_size = 2.4 * half_view * wall_distance  # with a margin for the camera's field of view
    wall = _box(
        "Wall",
        np.array([wall_size[0], 0.02, wall_size[1]]),
        face_centre + np.array([0.0, WALL_DEPTH_M, 0.0]),
        0.0,
    )
    wall.data.materials.append(_image_material("Wall", wallpaper(rng)))
    for i in range(6):
        depth = rng.uniform(0.7, WALL_DEPTH_M - 0.2)  # behind the face, before the wall
        x, z = rng.uniform(-0.9, 0.9, 2) * half_view * (CAMERA_DISTANCE_M + depth)
        box = _box(
            f"Clutter{i}",
            rng.uniform(0.06, 0.22, 3),
            face_centre + np.array([x, depth, z]),
            float(rng.uniform(-0.6, 0.6)),
        )
        mat, tree = _new_material(f"Clutter{i}")
        bsdf = tree.nodes.new("ShaderNodeBsdfDiffuse")
        bsdf.inputs["Color"].default_value = (*_random_colour(rng), 1.0)
        tree.links.new(bsdf.outputs["BSDF"], tree.nodes["Material Output"].inputs["Surface"])
        box.data.materials.append(mat)
    _set_world(top=(0.35, 0.42, 0.55), bottom=(0.25, 0.2, 0.16), strength=0.5)


def _set_world(top: tuple[float, ...], bottom: tuple[float, ...], strength: float) -> None:
    """A world whose colour blends from `bottom` (looking down) to `top` (looking up)."""
    world = bpy.data.worlds.new("World")
    bpy.context.scene.world = world
    nodes, links = world.node_tree.nodes, world.node_tree.links
    nodes.clear()
    coords = nodes.new("ShaderNodeTexCoord")
    split = nodes.new("ShaderNodeSeparateXYZ")
    ramp = nodes.new("ShaderNodeValToRGB")
    ramp.color_ramp.elements[0].position, ramp.color_ramp.elements[0].color = 0.3, (*bottom, 1)
    ramp.color_ramp.elements[1].position, ramp.color_ramp.elements[1].color = 0.7, (*top, 1)
    to_unit = nodes.new("ShaderNodeMapRange")  # direction z in [-1, 1] -> [0, 1]
    to_unit.inputs["From Min"].default_value = -1.0
    world.cycles.sampling_method = "NONE"  # dim and smooth: an importance map costs ~40%
    background = nodes.new("ShaderNodeBackground")
    background.inputs["Strength"].default_value = strength
    output = nodes.new("ShaderNodeOutputWorld")
    links.new(coords.outputs["Generated"], split.inputs["Vector"])
    links.new(split.outputs["Z"], to_unit.inputs["Value"])
    links.new(to_unit.outputs["Result"], ramp.inputs["Fac"])
    links.new(ramp.outputs["Color"], background.inputs["Color"])
    links.new(background.outputs["Background"], output.inputs["Surface"])


def configure_render(args: argparse.Namespace) -> bool:
    """Cycles on all CPU cores, the output format, and denoising when this build has it.
    Returns whether the frames are denoised."""
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = args.samples
    scene.cycles.seed = args.seed
    scene.cycles.use_animated_seed = True  # fresh noise per frame, like a sensor
    scene.cycles.max_bounces = 3
    scene.cycles.use_light_tree = False  # three lights: the tree costs more than it saves
    scene.render.threads_mode = "FIXED"
    scene.render.threads = _core_count()
    scene.render.resolution_x, scene.render.resolution_y = args.width, args.height
    scene.render.resolution_percentage = 100
    scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
    scene.render.film_transparent = False
    scene.render.use_persistent_data = True  # keep the scene between frames: saves ~1 s each
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGB"
    scene.render.image_settings.color_depth = "8"
    scene.view_settings.view_transform = "AgX"  # a camera-like highlight roll-off
    scene.view_settings.look = "AgX - Punchy"
    scene.cycles.use_denoising = False
    try:
        import _cycles  # exists only once the Cycles add-on is loaded

        if _cycles.with_openimagedenoise:
            scene.cycles.denoiser = "OPENIMAGEDENOISE"
            scene.cycles.denoising_prefilter = "FAST"
            scene.cycles.denoising_quality = "BALANCED"
            scene.cycles.use_denoising = True
    except (ImportError, AttributeError, TypeError):
        pass  # a build without OpenImageDenoise renders noisier frames, nothing else changes
    return bool(scene.cycles.use_denoising)


def _core_count() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def build_scene(head: Head, args: argparse.Namespace) -> tuple[bpy.types.Object, bool]:
    """A fresh scene with the head, camera, lights and surroundings. Returns the head object
    and whether frames are denoised."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    denoised = configure_render(args)
    scene_rng = np.random.default_rng([args.seed, 1])
    centre, length = face_frame(head)
    half_view = add_camera(centre, length, args.width, args.height)
    add_lights(centre)
    if args.background == "room":
        add_room(centre, half_view, scene_rng)
    else:
        _set_world(top=(0.5, 0.5, 0.5), bottom=(0.5, 0.5, 0.5), strength=1.0)
    return add_head(head), denoised


# --- rendering and output ----------------------------------------------------------------


def _matrix(obj: bpy.types.Object) -> np.ndarray:
    """The evaluated world matrix (4, 4) float64 of `obj`, as the renderer sees it."""
    depsgraph = bpy.context.evaluated_depsgraph_get()
    return np.array(obj.evaluated_get(depsgraph).matrix_world, dtype=np.float64)


def render_frames(
    head_obj: bpy.types.Object, vertices: np.ndarray, motion: np.ndarray, frames_dir: Path
) -> np.ndarray:
    """Render each frame to frames_dir/NNNNNN.png with the posed vertices (F, V, 3) and head
    motion (F, 4, 4); returns the head->world matrices (F, 4, 4) Blender actually used."""
    scene = bpy.context.scene
    used = np.empty_like(motion)
    n_frames = len(vertices)
    for i in range(n_frames):
        if CANCEL.is_set():
            raise Cancelled
        head_obj.data.vertices.foreach_set("co", vertices[i].ravel())
        head_obj.data.update()
        head_obj.matrix_world = Matrix(motion[i].tolist())
        scene.frame_current = i  # drives the animated noise seed
        bpy.context.view_layer.update()
        used[i] = _matrix(head_obj)
        scene.render.filepath = str(frames_dir / f"{frames_label(i)}.png")
        bpy.ops.render.render(write_still=True)
        print(f"frame {i + 1}/{n_frames}", file=sys.stderr, flush=True)
    return used


def render_clip(head: Head, args: argparse.Namespace, work: Path) -> None:
    """Render the clip and write frames/, truth.npz and clip.json into the directory `work`."""
    rng = np.random.default_rng([args.seed, 0])
    weights = expression_weights(head.names, args.frames, args.fps, rng)
    vertices = head.vertices + np.einsum("fk,kvc->fvc", weights, head.blendshapes)
    vertices = vertices.astype(np.float32)  # exactly the coordinates written to the mesh
    motion = head_motion(args.frames, args.fps, rng)

    head_obj, denoised = build_scene(head, args)
    frames_dir = work / "frames"
    frames_dir.mkdir()
    start = time.perf_counter()
    head_to_world = render_frames(head_obj, vertices, motion, frames_dir)
    seconds = time.perf_counter() - start

    camera = bpy.context.scene.camera
    data = camera.data
    intrinsics = intrinsics_from_blender_camera(data.lens, data.sensor_width, data.sensor_height,
                                                data.sensor_fit, data.shift_x, data.shift_y,
                                                args.width, args.height)
    head_pose = opencv_pose_from_blender(_matrix(camera)) @ head_to_world
    landmarks = np.stack(
        [
            project(v[head.landmark_vertex], p, intrinsics)
            for v, p in zip(vertices, head_pose, strict=True)
        ]
    )
    np.savez(
        work / "truth.npz",
        frames=np.arange(args.frames, dtype=np.int64),
        vertices=vertices,
        head_pose=head_pose.astype(np.float32),
        intrinsics=intrinsics.astype(np.float32),
        weights=weights,
        weight_names=np.array(head.names, dtype=str),
        landmarks_2d=landmarks.astype(np.float32),
        fps=np.float64(args.fps),
        width=np.int64(args.width),
        height=np.int64(args.height),
    )
    clip = {
        "fps": args.fps,
        "width": args.width,
        "height": args.height,
        "frames": args.frames,
        "seed": args.seed,
        "samples": args.samples,
        "denoised": denoised,
        "background": args.background,
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
        description="Render a demo performance clip of a head (Cycles, CPU) with ground truth.",
    )
    parser.add_argument("--head", type=Path, required=True, help="head.npz to render")
    parser.add_argument("--out", type=Path, required=True, help="output directory (created)")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=320)
    parser.add_argument("--fps", type=float, default=24.0)
    parser.add_argument("--samples", type=int, default=16, help="Cycles samples per pixel")
    parser.add_argument("--seed", type=int, default=0, help="performance and scene seed")
    parser.add_argument(
        "--background",
        choices=("room", "plain"),
        default="room",
        help="cluttered procedural room, or a flat grey world (for geometry checks)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = parser.parse_args(argv)
    for name in ("frames", "width", "height", "samples"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be positive")
    if not args.fps > 0:
        parser.error("--fps must be positive")
    if args.seed < 0:
        parser.error("--seed must be non-negative")
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
