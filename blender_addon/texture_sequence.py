"""Per-frame textures of a results directory on the head's material.

A results directory may hold `textures/<view>/NNNNNN.png` (NNNNNN = the 0-based source frame):
"projected" is the footage unwrapped into UV space with alpha = visibility, "footage" (or a
camera's name) a decoded view-dependent texture, opaque. The chosen view is played as an image
sequence in the material, mixed over the material's own albedo by the texture's alpha, so
texels the camera never saw keep the albedo. The "albedo" view shows no texture.

FaceAdapt's nodes are named TEXTURE_NODE and MIX_NODE and its images carry TEXTURE_TAG;
attaching again or switching views replaces only those. What was attached (results directory,
frames, timing, view) is kept on the material under TEXTURE_TAG for `set_texture_view`.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import bpy
import numpy as np

from ..backend.formats.results_dir import frame_label

TEXTURES_DIR = "textures"
ALBEDO_VIEW = "albedo"
TEXTURE_NODE = "FaceAdapt Texture"
MIX_NODE = "FaceAdapt Texture Mix"
TEXTURE_TAG = "faceadapt_texture"


class SequenceTiming(NamedTuple):
    """Image-user settings that show source frame `first + k` at scene frame
    `scene_frame_of_source_zero + first + k`, holding the first and last file outside the range.

    Blender shows file number clamp(scene_frame - frame_start + 1, 0, frame_duration) +
    frame_offset: starting one frame late with one frame less makes the clamp's lower end (0)
    a real file, where the usual settings would ask for the missing file `first - 1` before
    the range."""

    first: int  # source frame of the first file
    count: int
    frame_start: int
    frame_duration: int
    frame_offset: int


def sequence_timing(frames: np.ndarray, scene_frame_of_source_zero: int) -> SequenceTiming:
    """The image-user timing for the source frames (F,) (contiguous, ascending). ValueError for
    no frames or a gap, naming it."""
    frames = np.asarray(frames, np.int64).ravel()
    if frames.size == 0:
        raise ValueError("a texture sequence needs at least one frame")
    steps = np.diff(frames)
    if (steps != 1).any():
        k = int(np.flatnonzero(steps != 1)[0])
        raise ValueError(f"the frames are not contiguous: {frames[k]} is followed by "
                         f"{frames[k + 1]}, and a texture sequence plays every frame in between")
    first, count = int(frames[0]), int(frames.size)
    start = int(scene_frame_of_source_zero) + first + 1
    return SequenceTiming(first, count, start, count - 1, first)


def texture_views(results_dir: Path) -> list[str]:
    """The views a results directory offers: its texture folders holding PNGs, sorted, then
    "albedo" (no texture)."""
    folder = Path(results_dir) / TEXTURES_DIR
    views = sorted(p.name for p in folder.iterdir()
                   if p.is_dir() and next(p.glob("*.png"), None) is not None) if folder.is_dir() else []
    return [*views, ALBEDO_VIEW]


def attach_texture_sequence(material: bpy.types.Material, directory: Path, frames: np.ndarray,
                            scene_frame_of_source_zero: int, view: str) -> None:
    """Show `view`'s textures of the results directory `directory` on `material` (a Principled
    BSDF material): source frame i at scene frame `scene_frame_of_source_zero + i` for the
    source frames `frames` (F,), which must be contiguous. Replaces an earlier attachment.
    ValueError (nothing changed) for a gap in the frames, a view the directory lacks or misses
    frames of, or a material without a Principled BSDF."""
    timing = sequence_timing(frames, scene_frame_of_source_zero)
    settings = {"directory": str(Path(directory).resolve()), "first": timing.first,
                "count": timing.count, "scene_frame_of_source_zero": int(scene_frame_of_source_zero)}
    _show(material, settings, view)


def set_texture_view(material: bpy.types.Material, view: str) -> None:
    """Switch `material` to another view ("projected", "footage", another texture folder or
    "albedo") of the sequence attached to it. ValueError (nothing changed) when none is attached
    or the view is missing."""
    settings = material.get(TEXTURE_TAG)
    if settings is None:
        raise ValueError(f"material '{material.name}' has no FaceAdapt texture sequence: import "
                         "the results first")
    _show(material, settings.to_dict(), view)


def _check_view(settings: dict, view: str) -> Path | None:
    """The folder of `view`'s files (None for "albedo"); ValueError if it lacks any frame."""
    if view == ALBEDO_VIEW:
        return None
    if not view or Path(view).name != view:
        raise ValueError(f"'{view}' is not a texture view (a folder name under {TEXTURES_DIR}/)")
    results = Path(settings["directory"])
    folder = results / TEXTURES_DIR / view
    if not folder.is_dir():
        raise ValueError(f"{results} has no '{view}' textures (views: "
                         f"{', '.join(texture_views(results))})")
    first, count = settings["first"], settings["count"]
    missing = [i for i in range(first, first + count)
               if not (folder / f"{frame_label(i)}.png").is_file()]
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
        raise ValueError(f"{folder} lacks the textures of {len(missing)} frame(s): {shown}")
    return folder


def _principled(tree: bpy.types.NodeTree) -> bpy.types.Node:
    """The Principled BSDF the material renders with (linked to the active output), or its
    only one."""
    for node in tree.nodes:
        if node.bl_idname == "ShaderNodeOutputMaterial" and node.is_active_output:
            for link in node.inputs["Surface"].links:
                if link.from_node.bl_idname == "ShaderNodeBsdfPrincipled":
                    return link.from_node
    found = [n for n in tree.nodes if n.bl_idname == "ShaderNodeBsdfPrincipled"]
    if len(found) != 1:
        raise ValueError(f"{len(found)} Principled BSDF nodes and none linked to the output: "
                         "no albedo to put the texture on")
    return found[0]


def _detach(tree: bpy.types.NodeTree, mix: bpy.types.Node | None,
            texture: bpy.types.Node | None) -> list[bpy.types.Image]:
    """Remove FaceAdapt's nodes `mix` and `texture`, linking what the mix mixed over (the
    albedo) back where it went; returns the images the texture showed."""
    images = []
    if mix is not None:
        albedo = _socket(mix.inputs, "A_Color")
        source = albedo.links[0].from_socket if albedo.is_linked else None
        for link in list(_socket(mix.outputs, "Result_Color").links):
            target = link.to_socket
            tree.links.remove(link)
            if source is not None:
                tree.links.new(source, target)
            else:
                target.default_value = albedo.default_value
        tree.nodes.remove(mix)
    if texture is not None:
        if texture.image is not None:
            images.append(texture.image)
        tree.nodes.remove(texture)
    return images


def _load_sequence(folder: Path, first: int, count: int) -> bpy.types.Image:
    """The images of `folder` from source frame `first` on, tagged as FaceAdapt's."""
    image = bpy.data.images.load(str(folder / f"{frame_label(first)}.png"), check_existing=False)
    image[TEXTURE_TAG] = True
    # One frame is a still: a sequence of one would need a duration of 0, which Blender
    # reads as "no sequence" and shows file 0.
    image.source = "SEQUENCE" if count > 1 else "FILE"
    return image


def _socket(sockets: bpy.types.bpy_prop_collection, identifier: str) -> bpy.types.NodeSocket:
    """A socket by identifier: the Mix node's float, vector and colour sockets share names."""
    return next(socket for socket in sockets if socket.identifier == identifier)


def _show(material: bpy.types.Material, settings: dict, view: str) -> None:
    """Make `material` show `view` of the attachment `settings`. Everything that can fail (the
    checks, the image, the new nodes) comes before the old nodes go, so a failure leaves the
    material as it was."""
    folder = _check_view(settings, view)
    tree = material.node_tree
    if tree is None:
        raise ValueError(f"material '{material.name}' has no nodes")
    old_mix, old_texture = tree.nodes.get(MIX_NODE), tree.nodes.get(TEXTURE_NODE)
    if old_mix is not None and _socket(old_mix.outputs, "Result_Color").is_linked:  # the BSDF it feeds
        bsdf = _socket(old_mix.outputs, "Result_Color").links[0].to_node
    else:
        bsdf = _principled(tree)
    image = None
    created: list[bpy.types.Node] = []
    if folder is not None:
        timing = sequence_timing(np.arange(settings["count"]) + settings["first"],
                                 settings["scene_frame_of_source_zero"])
        image = _load_sequence(folder, timing.first, timing.count)
        try:
            created = _new_nodes(tree, bsdf, image, timing)
        except Exception:
            bpy.data.images.remove(image)
            raise
    old_images = _detach(tree, old_mix, old_texture)
    material[TEXTURE_TAG] = {**settings, "view": view}
    for old in old_images:
        if old.get(TEXTURE_TAG) and old.users == 0:
            bpy.data.images.remove(old)
    if image is not None:  # the names the old ones held
        texture, mix = created
        tree.links.new(_socket(mix.outputs, "Result_Color"), bsdf.inputs["Base Color"])
        texture.name = texture.label = TEXTURE_NODE
        mix.name = MIX_NODE
        image.name = f"FaceAdapt {material.name} {view}"


def _new_nodes(tree: bpy.types.NodeTree, bsdf: bpy.types.Node, image: bpy.types.Image,
               timing: SequenceTiming) -> list[bpy.types.Node]:
    """Image Texture -> Mix (by the texture's alpha) over the albedo: what feeds the BSDF's Base
    Color now, or what an earlier FaceAdapt mix mixed over. Returns [texture, mix], the mix's
    result not yet linked; removes them again if anything fails."""
    nodes: list[bpy.types.Node] = []
    try:
        texture = tree.nodes.new("ShaderNodeTexImage")
        nodes.append(texture)
        texture.name = texture.label = TEXTURE_NODE
        texture.image = image
        texture.interpolation = "Linear"
        texture.extension = "EXTEND"  # no wrap-around at the UV borders
        user = texture.image_user
        user.frame_start = timing.frame_start
        user.frame_duration = timing.frame_duration
        user.frame_offset = timing.frame_offset
        user.use_auto_refresh = True  # follow the scene frame
        user.use_cyclic = False
        mix = tree.nodes.new("ShaderNodeMix")
        nodes.append(mix)
        mix.name = MIX_NODE
        mix.label = TEXTURE_NODE
        mix.data_type = "RGBA"
        mix.blend_type = "MIX"
        mix.clamp_factor = True
        old_mix = tree.nodes.get(MIX_NODE)
        albedo = (bsdf.inputs["Base Color"] if old_mix is None or old_mix == mix
                  else _socket(old_mix.inputs, "A_Color"))
        mix_albedo = _socket(mix.inputs, "A_Color")
        if albedo.is_linked:
            tree.links.new(albedo.links[0].from_socket, mix_albedo)
        else:
            mix_albedo.default_value = albedo.default_value
        tree.links.new(texture.outputs["Color"], _socket(mix.inputs, "B_Color"))
        tree.links.new(texture.outputs["Alpha"], _socket(mix.inputs, "Factor_Float"))
        mix.location = (bsdf.location.x - 200.0, bsdf.location.y)
        texture.location = (bsdf.location.x - 500.0, bsdf.location.y - 150.0)
    except Exception:
        for node in nodes:
            tree.nodes.remove(node)
        raise
    return nodes
