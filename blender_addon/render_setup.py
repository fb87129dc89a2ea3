"""Make F12 render an imported head over its footage: a face light rig, a soft grey world, a
transparent film with the footage composited behind the render, and a colour view that leaves
the (display-referred) footage as it was filmed.

FaceAdapt's own datablocks carry the custom property RENDER_TAG and fixed names; running the
setup again replaces those, never datablocks of the user's. A compositor or a world the user
made is kept, with a warning (`user_render_setup`). If the setup fails half-way, everything it
changed is undone; `RenderSetup.restore` undoes a setup that succeeded.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import bpy
import numpy as np
from mathutils import Matrix

RENDER_TAG = "faceadapt_render_setup"  # custom property on every datablock this module makes
LIGHT_NAMES = ("FaceAdapt Key", "FaceAdapt Fill", "FaceAdapt Rim")
WORLD_NAME = "FaceAdapt World"
FOOTAGE_GROUP = "FaceAdapt Footage"
WORLD_GREY = 0.18  # linear middle grey: a soft, neutral surround for the skin
WORLD_STRENGTH = 0.35
# Key power per squared metre of its distance: a face of albedo 0.6 renders at about 0.5 of
# white (linear) where key and fill light it, measured with Cycles, leaving headroom for the rim.
KEY_WATTS_PER_M2 = 9.0


class LightPlacement(NamedTuple):
    """One area light of the rig: world matrix (4, 4) (its -Z axis at the head), square size
    (m) and power (W)."""

    name: str
    matrix: np.ndarray
    size: float
    energy: float


@dataclass
class RenderSetup:
    """What `setup_render` did: the FaceAdapt datablocks now in use (None where the user's
    own was kept), the settings it changed as readable lines ("render.use_sequencer: True ->
    False") and warnings for the user."""

    lights: list[str] = field(default_factory=list)
    world: str | None = None
    compositor: str | None = None
    changes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    _undo: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _commit: Callable[[], None] | None = field(default=None, repr=False)

    def commit(self) -> None:
        """Remove what this setup replaced (an earlier setup's lights, world, compositor) and
        give its own datablocks their plain names; after it, `restore` cannot bring those back."""
        if self._commit is not None:
            self._commit()
            self._commit = None

    def restore(self) -> None:
        """Put back the settings this setup changed and remove what it made. FaceAdapt
        datablocks of an earlier setup that it replaced are gone: settings that pointed at them
        are cleared instead."""
        for step in reversed(self._undo):
            step()
        self._undo.clear()


def _alive(value: object) -> bool:
    """False for a datablock that has been removed (its Python wrapper then raises)."""
    try:
        getattr(value, "name", None)
    except ReferenceError:
        return False
    return True


def _set(owner: object, attribute: str, value: object, label: str, setup: RenderSetup) -> None:
    """Set owner.attribute, recording the change and how to undo it."""
    before = getattr(owner, attribute)
    if before == value:
        return
    setattr(owner, attribute, value)
    shown = (getattr(v, "name", v) for v in (before, value))
    setup.changes.append("{}: {!r} -> {!r}".format(label, *shown))
    setup._undo.append(lambda: setattr(owner, attribute, before if _alive(before) else None))


def _is_ours(datablock: bpy.types.ID | None, name: str) -> bool:
    """Whether `datablock` is FaceAdapt's `name`: tagged, and so named, or "name.001" and so on
    where another scene's setup holds the name."""
    return (datablock is not None and bool(datablock.get(RENDER_TAG))
            and re.sub(r"\.\d{3,}$", "", datablock.name) == name)


def _tag(datablock: bpy.types.ID) -> bpy.types.ID:
    datablock[RENDER_TAG] = True
    return datablock


# --- plain geometry -------------------------------------------------------------------------


def light_rig(corners: np.ndarray, camera_matrix: np.ndarray) -> list[LightPlacement]:
    """Key, fill and rim area lights for a head whose bounding box has the world-space corners
    (N, 3), seen by a camera with world matrix (4, 4). Directions are taken in the camera's
    frame, so the face is lit as it appears in the footage: the key up and to the camera's
    right, a broad dim fill low on its left, a rim from behind on the right. Sizes and
    distances scale with the head, and power with distance squared, so any head size gets
    the same exposure."""
    corners = np.asarray(corners, np.float64)
    centre = corners.mean(0)
    size = max(float(np.linalg.norm(corners.max(0) - corners.min(0))), 1e-3)
    camera = np.asarray(camera_matrix, np.float64)
    right, up, back = (camera[:3, k] / np.linalg.norm(camera[:3, k]) for k in range(3))
    # (azimuth from the camera towards its right, elevation, distance, size) in head sizes,
    # and power relative to the key.
    layout = ((40.0, 30.0, 3.0, 1.0, 1.0), (-50.0, 5.0, 3.0, 2.0, 0.35), (150.0, 35.0, 2.5, 0.7, 0.8))
    placements = []
    for name, (azimuth, elevation, distance, extent, power) in zip(LIGHT_NAMES, layout, strict=True):
        az, el = np.radians(azimuth), np.radians(elevation)
        offset = np.cos(el) * (np.cos(az) * back + np.sin(az) * right) + np.sin(el) * up
        location = centre + distance * size * offset
        to_head = -offset  # the light's -Z axis
        x_axis = np.cross(up, offset)
        if np.linalg.norm(x_axis) < 1e-6:  # straight above: any horizontal axis will do
            x_axis = right
        x_axis /= np.linalg.norm(x_axis)
        matrix = np.eye(4)
        matrix[:3, 0], matrix[:3, 1], matrix[:3, 2] = x_axis, np.cross(-to_head, x_axis), -to_head
        matrix[:3, 3] = location
        energy = KEY_WATTS_PER_M2 * power * (distance * size) ** 2
        placements.append(LightPlacement(name, matrix, extent * size, energy))
    return placements


# --- what the scene already has ---------------------------------------------------------------


def _compositor_groups(scene: bpy.types.Scene) -> list[bpy.types.NodeTree]:
    """The compositing node groups the scene renders with: Blender 5.3's stack of compositor
    effects (Scene.compositing_node_group is deprecated there), else 5.0's single group."""
    if hasattr(scene, "compositor_effects"):
        return [e.node_group for e in scene.compositor_effects
                if e.node_group is not None and e.enable_for_render]
    group = scene.compositing_node_group
    return [] if group is None else [group]


def _is_plain_world(world: bpy.types.World) -> bool:
    """A world of one plain colour (like the startup file's): nothing of the user's to lose."""
    tree = world.node_tree
    if tree is None:
        return True
    kinds = sorted(node.bl_idname for node in tree.nodes)
    if kinds != ["ShaderNodeBackground", "ShaderNodeOutputWorld"]:
        return False
    return not any(s.is_linked for node in tree.nodes for s in node.inputs
                   if node.bl_idname == "ShaderNodeBackground")


def user_render_setup(scene: bpy.types.Scene) -> list[str]:
    """Warnings naming what of the user's own `setup_render` would keep rather than replace:
    a compositor that is not FaceAdapt's, and a world with more than a plain colour."""
    warnings = []
    for group in _compositor_groups(scene):
        if not _is_ours(group, FOOTAGE_GROUP):
            warnings.append(f"the scene's compositor '{group.name}' is not FaceAdapt's: it is left "
                            "as it is, so the footage is not composited behind the render")
    world = scene.world
    if world is not None and not _is_ours(world, WORLD_NAME) and not _is_plain_world(world):
        warnings.append(f"the scene's world '{world.name}' has its own nodes: it is kept, so it "
                        "lights the head with FaceAdapt's lights")
    return warnings


# --- building ---------------------------------------------------------------------------------


def _head_corners(head_obj: bpy.types.Object) -> np.ndarray:
    """World-space corners (8, 3) of the head's bounding box as evaluated now."""
    evaluated = head_obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    matrix = np.array(evaluated.matrix_world)
    local = np.array([tuple(c) for c in evaluated.bound_box], np.float64)
    return local @ matrix[:3, :3].T + matrix[:3, 3]


def _add_lights(scene: bpy.types.Scene, camera_obj: bpy.types.Object,
                head_obj: bpy.types.Object, created: list) -> list[bpy.types.Object]:
    """The rig's light objects, linked to the scene's master collection; static in world space
    (not parented to the moving head) so the lighting stays put like a studio's."""
    objects = []
    for placement in light_rig(_head_corners(head_obj), np.array(camera_obj.matrix_world)):
        light = _tag(bpy.data.lights.new(placement.name, "AREA"))
        created.append((bpy.data.lights, light))
        light.shape = "SQUARE"
        light.size = placement.size
        light.energy = placement.energy
        obj = _tag(bpy.data.objects.new(placement.name, light))
        created.append((bpy.data.objects, obj))
        obj.matrix_world = Matrix(placement.matrix.tolist())
        scene.collection.objects.link(obj)
        objects.append(obj)
    return objects


def _add_world(created: list) -> bpy.types.World:
    world = _tag(bpy.data.worlds.new(WORLD_NAME))
    created.append((bpy.data.worlds, world))
    tree = world.node_tree  # new worlds come with nodes in 5.x (World.use_nodes is deprecated)
    tree.nodes.clear()
    background = tree.nodes.new("ShaderNodeBackground")
    background.inputs["Color"].default_value = (WORLD_GREY, WORLD_GREY, WORLD_GREY, 1.0)
    background.inputs["Strength"].default_value = WORLD_STRENGTH
    output = tree.nodes.new("ShaderNodeOutputWorld")
    tree.links.new(background.outputs["Background"], output.inputs["Surface"])
    return world


def _add_footage_group(scene: bpy.types.Scene, clip: bpy.types.MovieClip,
                       created: list) -> bpy.types.NodeTree:
    """Compositor: the clip, stretched to the render size (the camera matches the footage's
    frame, so their aspects agree), under the render's premultiplied image."""
    group = _tag(bpy.data.node_groups.new(FOOTAGE_GROUP, "CompositorNodeTree"))
    created.append((bpy.data.node_groups, group))
    group.interface.new_socket(name="Image", in_out="OUTPUT", socket_type="NodeSocketColor")
    nodes, links = group.nodes, group.links
    render = nodes.new("CompositorNodeRLayers")
    render.scene = scene
    footage = nodes.new("CompositorNodeMovieClip")
    footage.clip = clip
    scale = nodes.new("CompositorNodeScale")
    # Menu sockets take their items' names (5.0 turned these node options into inputs).
    scale.inputs["Type"].default_value = "Render Size"
    scale.inputs["Frame Type"].default_value = "Stretch"
    over = nodes.new("CompositorNodeAlphaOver")
    output = nodes.new("NodeGroupOutput")
    links.new(footage.outputs["Image"], scale.inputs["Image"])
    links.new(scale.outputs["Image"], over.inputs["Background"])
    links.new(render.outputs["Image"], over.inputs["Foreground"])
    links.new(over.outputs["Image"], output.inputs["Image"])
    for x, node in enumerate((footage, scale, over, output)):
        node.location = (x * 220.0, 0.0)
    render.location = (220.0, -260.0)
    return group


def _use_footage_group(scene: bpy.types.Scene, group: bpy.types.NodeTree | None,
                       setup: RenderSetup) -> None:
    """Render through `group` (None: through no compositor): the effect of that name in 5.3's
    effect stack (made if needed), else 5.0's scene compositing group."""
    if not hasattr(scene, "compositor_effects"):
        _set(scene, "compositing_node_group", group, "compositing_node_group", setup)
        return
    effects = scene.compositor_effects
    effect = next((e for e in effects if e.name == FOOTAGE_GROUP), None)
    if effect is None and group is None:
        return
    if effect is None:
        effect = effects.new(FOOTAGE_GROUP)
        setup.changes.append(f"compositor effect '{FOOTAGE_GROUP}' added")
        setup._undo.append(lambda: effects.remove(effect))
    _set(effect, "node_group", group, f"compositor effect '{FOOTAGE_GROUP}'", setup)
    _set(effect, "enable_for_render", True, f"compositor effect '{FOOTAGE_GROUP}' render", setup)


def _ours_in_scene(scene: bpy.types.Scene) -> tuple[list, bpy.types.World | None,
                                                    list[bpy.types.NodeTree]]:
    """FaceAdapt's lights, world and footage groups from an earlier setup of this scene."""
    lights = [obj for obj in scene.objects if any(_is_ours(obj, name) for name in LIGHT_NAMES)]
    world = scene.world if _is_ours(scene.world, WORLD_NAME) else None
    groups = [g for g in _compositor_groups(scene) if _is_ours(g, FOOTAGE_GROUP)]
    return lights, world, groups


def _remove_replaced(lights: list, world: bpy.types.World | None,
                     groups: list[bpy.types.NodeTree]) -> None:
    for obj in lights:
        data = obj.data
        bpy.data.objects.remove(obj)
        if data is not None and data.users == 0:
            bpy.data.lights.remove(data)
    if world is not None and world.users == 0:
        bpy.data.worlds.remove(world)
    for group in groups:
        if group.users == 0:
            bpy.data.node_groups.remove(group)


def setup_render(scene: bpy.types.Scene, camera_obj: bpy.types.Object,
                 head_obj: bpy.types.Object, clip: bpy.types.MovieClip | None,
                 scene_frame_of_clip_start: int, deferred: bool = False) -> RenderSetup:
    """Make F12 render the head over the footage `clip` (None: no footage, the film stays
    opaque), whose first frame shows at scene frame `scene_frame_of_clip_start`.

    Adds the lights "FaceAdapt Key/Fill/Rim" (sized and placed for the head's current bounding
    box and the camera's view), the world "FaceAdapt World" (unless the user's world has its own
    nodes) and the compositor "FaceAdapt Footage" (unless the scene composites with the user's
    own group: then a warning). Sets the scene camera, a transparent film, compositing on, the
    Video Sequencer off for renders (its strips would be rendered instead of the scene), the
    "Standard" view (AgX would tone-map the footage again) and EEVEE where the engine was
    Workbench (which ignores lights). Replaces an earlier setup's FaceAdapt datablocks; on
    failure the scene is left as it was. A user's plain world it replaces gets a fake user (kept
    in the file). `deferred`: the earlier setup's datablocks are removed only by the returned
    setup's `commit()`, so a caller whose later steps fail can still `restore()` everything.
    """
    setup = RenderSetup(warnings=user_render_setup(scene))
    user_compositor = any(not _is_ours(g, FOOTAGE_GROUP) for g in _compositor_groups(scene))
    old_lights, old_world, old_groups = _ours_in_scene(scene)
    created: list = []
    world = group = None
    try:
        lights = _add_lights(scene, camera_obj, head_obj, created)
        setup._undo.append(lambda: _remove_created(created))
        render = scene.render
        _set(scene, "camera", camera_obj, "camera", setup)
        if scene.world is None or old_world is not None or _is_plain_world(scene.world):
            replaced = scene.world if scene.world is not None and old_world is None else None
            world = _add_world(created)
            _set(scene, "world", world, "world", setup)
            if replaced is not None:  # the user's own: kept in the file, not purged on save
                _set(replaced, "use_fake_user", True, f"world '{replaced.name}' fake user", setup)
        if clip is not None and not user_compositor:
            group = _add_footage_group(scene, clip, created)
            _set(clip, "frame_start", int(scene_frame_of_clip_start), "clip.frame_start", setup)
            _use_footage_group(scene, group, setup)
            _set(render, "film_transparent", True, "render.film_transparent", setup)
            _set(render, "use_compositing", True, "render.use_compositing", setup)
        elif old_groups:  # no footage now: an earlier setup's would show a stale clip
            _use_footage_group(scene, None, setup)
            _set(render, "film_transparent", False, "render.film_transparent", setup)
        _set(render, "use_sequencer", False, "render.use_sequencer", setup)
        if render.engine == "BLENDER_WORKBENCH":
            _set(render, "engine", "BLENDER_EEVEE", "render.engine", setup)
        view = scene.view_settings
        _set(view, "view_transform", "Standard", "view_settings.view_transform", setup)
        _set(view, "look", "None", "view_settings.look", setup)
    except Exception:
        setup.restore()
        _remove_created(created)
        raise

    def commit() -> None:
        _remove_replaced(old_lights, old_world, old_groups)
        for name, obj in zip(LIGHT_NAMES, lights, strict=True):  # ".001" while the old existed
            obj.name = obj.data.name = name
        if world is not None:
            world.name = WORLD_NAME
        if group is not None:
            group.name = FOOTAGE_GROUP
        setup.lights = [obj.name for obj in lights]
        setup.world = scene.world.name if _is_ours(scene.world, WORLD_NAME) else None
        setup.compositor = next((g.name for g in _compositor_groups(scene)
                                 if _is_ours(g, FOOTAGE_GROUP)), None)

    setup._commit = commit
    if not deferred:
        setup.commit()
    return setup


def _remove_created(created: list) -> None:
    """Remove the datablocks in `created` (newest first) that still exist."""
    for collection, datablock in reversed(created):
        if _alive(datablock):
            collection.remove(datablock)
    created.clear()
