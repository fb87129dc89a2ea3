"""A digital double in the scene written as a head file for `personalize` (*Make Model From
Double*; backend/heads/digital_double.py finishes it).

What Blender knows goes into the file: the mesh without modifiers, triangulated with its vertex
ids kept (so per-vertex results, e.g. a point cache, apply to the double itself, in its object
space when it stands unrotated and unscaled); the active UV map per triangle corner; every
shape key as a blendshape (its offset from its relative key),
named in ARKit spelling where its name matches an ARKit channel one to one (arkit_names.py);
the image on its material's Base Color as the albedo; and the face region when a vertex group
named FACE_GROUP marks it. Head space is the object's own axes as it stands in the scene
(rotation and scale of its world matrix, no translation): the face toward -Y, +Z up, metres.
The landmarks are left unplaced (landmark_mask all False): the backend places them on renders.
"""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from ..backend.formats.head_file import HeadAsset, save_head
from ..backend.formats.protocol import NUM_LANDMARKS
from .arkit_names import ARKIT_NAMES, match_shape_keys
from .backend_job import UserError

FACE_GROUP = "face"
MAX_ALBEDO = 1024  # texels a side: the lab capture decodes far fewer, a 4k map only slows it


def double_albedo(obj: bpy.types.Object) -> np.ndarray:
    """(H, W, 3) uint8 sRGB, row 0 the top: the image feeding the Base Color of the double's
    first material with a Principled BSDF. UserError saying what to add when there is none."""
    for slot in obj.material_slots:
        tree = slot.material.node_tree if slot.material is not None else None
        if tree is None:
            continue
        for node in tree.nodes:
            if node.type != "BSDF_PRINCIPLED" or not node.inputs["Base Color"].is_linked:
                continue
            source = node.inputs["Base Color"].links[0].from_node
            if source.type == "TEX_IMAGE" and source.image is not None:
                return _image_pixels(source.image, obj.name)
    raise UserError(f"'{obj.name}' has no textured material: its material needs an Image Texture "
                    "node feeding the Principled BSDF's Base Color (the double's skin)")


def _image_pixels(image: bpy.types.Image, owner: str) -> np.ndarray:
    width, height = image.size  # reading it loads the image's file
    channels = image.channels
    if width * height == 0 or len(image.pixels) != width * height * channels:
        raise UserError(f"the image '{image.name}' of '{owner}' cannot be read (is its file "
                        f"{image.filepath or 'unset'} missing?): reload or pack it")
    pixels = np.empty(width * height * channels, np.float32)
    image.pixels.foreach_get(pixels)
    image_rows = pixels.reshape(height, width, channels)[::-1]  # Blender's rows start at the bottom
    rgb = image_rows[..., :3] if channels >= 3 else np.repeat(image_rows[..., :1], 3, axis=2)
    if image.is_float:  # float images hold linear values; the head file's albedo is sRGB
        rgb = np.where(rgb <= 0.0031308, 12.92 * rgb,
                       1.055 * np.power(np.clip(rgb, 0, None), 1 / 2.4) - 0.055)
    factor = -(-max(width, height) // MAX_ALBEDO)
    if factor > 1:
        rows, cols = height // factor * factor, width // factor * factor
        rgb = rgb[:rows, :cols].reshape(rows // factor, factor, cols // factor, factor, 3).mean((1, 3))
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)


def double_head(obj: bpy.types.Object) -> HeadAsset:
    """The double `obj` as a head (landmarks unplaced); UserError naming what it lacks."""
    if obj.type != "MESH":
        raise UserError(f"'{obj.name}' is a {obj.type.lower()}, not a mesh: select the double's head mesh")
    mesh = obj.data
    keys = mesh.shape_keys.key_blocks if mesh.shape_keys is not None else []
    if len(keys) < 2:
        raise UserError(f"'{obj.name}' has no expression shape keys: a face model learns the "
                        "double's expressions from them (ARKit names such as jawOpen, eyeBlinkLeft "
                        "are tracked as ARKit curves)")
    if mesh.uv_layers.active is None:
        raise UserError(f"'{obj.name}' has no UV map: its texture needs one")
    albedo = double_albedo(obj)
    linear = np.array(obj.matrix_world.to_3x3(), np.float64)
    v = len(mesh.vertices)

    def key_positions(key: bpy.types.ShapeKey) -> np.ndarray:
        co = np.empty(v * 3, np.float32)
        key.data.foreach_get("co", co)
        return co.reshape(v, 3).astype(np.float64) @ linear.T

    reference = mesh.shape_keys.reference_key
    basis = key_positions(reference)
    expressions = [k for k in keys if k != reference]
    deltas = np.stack([key_positions(k) - key_positions(k.relative_key or reference) for k in expressions])
    mesh.calc_loop_triangles()
    t = len(mesh.loop_triangles)
    corners = np.empty(t * 3, np.int32)
    mesh.loop_triangles.foreach_get("vertices", corners)
    loops = np.empty(t * 3, np.int32)
    mesh.loop_triangles.foreach_get("loops", loops)
    uv = np.empty(len(mesh.loops) * 2, np.float32)
    mesh.uv_layers.active.data.foreach_get("uv", uv)
    face_region = np.zeros(v, bool)
    group = obj.vertex_groups.get(FACE_GROUP)
    if group is not None:
        for vertex in mesh.vertices:
            face_region[vertex.index] = any(g.group == group.index and g.weight > 0.5 for g in vertex.groups)
    head = HeadAsset(vertices=basis.astype(np.float32), faces=corners.reshape(t, 3).astype(np.int64),
                     uv=uv.reshape(-1, 2), uv_faces=loops.reshape(t, 3).astype(np.int64),
                     blendshapes=deltas.astype(np.float32),
                     blendshape_names=arkit_spelled([k.name for k in expressions]),
                     landmark_vertex=np.zeros(NUM_LANDMARKS, np.int64),
                     landmark_mask=np.zeros(NUM_LANDMARKS, bool), face_region=face_region,
                     albedo=albedo)
    return head


def arkit_spelled(names: list[str]) -> list[str]:
    """Shape key names, each matching one ARKit channel unambiguously given Apple's spelling
    (`EyeBlink_L` -> `eyeBlinkLeft`); the rest as they are."""
    pairs = match_shape_keys(names, list(ARKIT_NAMES)).pairs
    spelled = {key: channel for channel, key in pairs.items()}
    return [spelled.get(name, name) for name in names]


def export_double(obj: bpy.types.Object, path: Path) -> HeadAsset:
    """Write the double as a head file at `path` (atomically); returns it."""
    head = double_head(obj)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_head(head, path)
    return head
