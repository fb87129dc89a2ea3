"""Building a rigged head in Blender from a head file (DESIGN.md head-file schema).

The result: a mesh with the head's UVs, one shape key per blendshape (ARKit names), a
material with its albedo, and an armature (root, neck, head bones) the mesh is skinned to,
all vertices on the head bone, with jaw and eye bones whose rotations drive the jaw and gaze
shape keys (face_controls.py). Everything is created or nothing: on failure the new
datablocks are removed again.
"""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from ..backend.formats.head_file import HeadAsset, load_head, topology_hash
from .face_controls import DRIVEN_KEYS, BoneSpec, control_bones, driver_expression
from .head_mesh import head_mesh, skin_material
from .neck_cut import add_neck_cut, neck_cut_height

# The default face model's head, shipped in the extension: heads the add-on makes itself.
MODEL_HEAD = Path(__file__).resolve().parents[1] / "backend" / "models" / "default" / "head.npz"
HASH_PROPERTY = "faceadapt_topology_hash"
HEAD_PROPERTY = "faceadapt_head"
HEAD_BONE = "head"
# Bone layout in head space (origin at the neck base, +Z up): root at the origin pointing
# back, the neck up to the skull base, the head bone up through the skull.
BONES = (BoneSpec("root", (0.0, 0.0, 0.0), (0.0, 0.1, 0.0), None, False),
         BoneSpec("neck", (0.0, 0.0, 0.0), (0.0, 0.0, 0.08), "root", False),
         BoneSpec(HEAD_BONE, (0.0, 0.0, 0.08), (0.0, 0.0, 0.25), "neck", True))


def mesh_topology_hash(mesh: bpy.types.Mesh) -> str:
    """The head file's topology_hash of a triangle mesh with its active UV layer ("" when it has
    quads, n-gons or no UVs: it cannot match a head file)."""
    if any(len(p.vertices) != 3 for p in mesh.polygons) or mesh.uv_layers.active is None:
        return ""
    corners = np.empty(len(mesh.polygons) * 3, np.int32)
    mesh.polygons.foreach_get("vertices", corners)
    corner_uv = np.empty(len(mesh.loops) * 2, np.float32)
    mesh.uv_layers.active.data.foreach_get("uv", corner_uv)
    return topology_hash(len(mesh.vertices), corners.reshape(-1, 3), corner_uv.reshape(-1, 3, 2))


def build_head(context: bpy.types.Context, head_path: Path, head_id: str,
               name: str = "FaceAdapt Head") -> bpy.types.Object:
    """Create the rigged head in the active collection; returns the mesh object."""
    head = load_head(head_path)
    created: list[tuple[object, object]] = []  # (collection of datablocks, datablock)
    try:
        mesh_obj = _build_mesh(head, name, created)
        bones = BONES + control_bones(head.vertices, head.landmark_vertex, HEAD_BONE)
        rig = _build_armature(context, name, bones, created)
        context.collection.objects.link(rig)
        context.collection.objects.link(mesh_obj)
        mesh_obj.parent = rig
        group = mesh_obj.vertex_groups.new(name=HEAD_BONE)
        group.add(list(range(len(mesh_obj.data.vertices))), 1.0, "REPLACE")
        modifier = mesh_obj.modifiers.new("Armature", "ARMATURE")
        modifier.object = rig
        mesh_obj[HASH_PROPERTY] = mesh_topology_hash(mesh_obj.data)
        mesh_obj[HEAD_PROPERTY] = head_id
        _drive_face_keys(mesh_obj, rig)
        return mesh_obj
    except Exception:
        for collection, block in reversed(created):
            collection.remove(block)
        raise


def _build_mesh(head: HeadAsset, name: str, created: list) -> bpy.types.Object:
    mesh = head_mesh(name, head.vertices, head.faces, head.uv, head.uv_faces, created)
    obj = bpy.data.objects.new(name, mesh)
    created.append((bpy.data.objects, obj))
    obj.shape_key_add(name="Basis", from_mix=False)
    for shape_name, delta in zip(head.blendshape_names, head.blendshapes, strict=True):
        key = obj.shape_key_add(name=shape_name, from_mix=False)
        key.data.foreach_set("co", (head.vertices + delta).astype(np.float32).ravel())
        key.slider_min, key.slider_max = 0.0, 1.0
        key.value = 0.0
    obj.data.shape_keys.name = f"{name} Keys"
    material = skin_material(name, head.albedo, created)
    obj.data.materials.append(material)
    cut = neck_cut_height(head.vertices, head.faces, float(head.vertices[head.landmark_vertex[8], 2]))
    if cut is not None:
        add_neck_cut(mesh, material, head.vertices, cut)
    return obj


def _build_armature(context: bpy.types.Context, name: str, bones: tuple[BoneSpec, ...],
                    created: list) -> bpy.types.Object:
    armature = bpy.data.armatures.new(f"{name} Rig")
    created.append((bpy.data.armatures, armature))
    rig = bpy.data.objects.new(f"{name} Rig", armature)
    created.append((bpy.data.objects, rig))
    # Edit bones exist only in edit mode, which needs the object in the view layer.
    context.collection.objects.link(rig)
    previous_active = context.view_layer.objects.active
    context.view_layer.objects.active = rig
    try:
        bpy.ops.object.mode_set(mode="EDIT")
        for spec in bones:
            bone = armature.edit_bones.new(spec.name)
            bone.head, bone.tail = spec.head, spec.tail
            bone.use_deform = spec.deform
            if spec.parent:
                bone.parent = armature.edit_bones[spec.parent]
        bpy.ops.object.mode_set(mode="OBJECT")
    finally:
        context.collection.objects.unlink(rig)
        context.view_layer.objects.active = previous_active
    rig.pose.bones[HEAD_BONE].rotation_mode = "QUATERNION"
    for key in DRIVEN_KEYS:
        rig.pose.bones[key.bone].rotation_mode = "XYZ"
        rig[key.base_property] = 0.0
    return rig


def _drive_face_keys(mesh_obj: bpy.types.Object, rig: bpy.types.Object) -> None:
    """Drivers from the jaw and eye bones onto their ARKit shape keys (a head file without one
    of those shapes simply has no driver for it). Driven keys may go below 0: with a base, an
    animator's pose can close what the tracked geometry opened."""
    blocks = mesh_obj.data.shape_keys.key_blocks
    for key in DRIVEN_KEYS:
        block = blocks.get(key.key)
        if block is None:
            continue
        block.slider_min = -1.0
        driver = block.driver_add("value").driver
        driver.type = "SCRIPTED"
        angle = driver.variables.new()
        angle.name, angle.type = "angle", "TRANSFORMS"
        target = angle.targets[0]
        target.id, target.bone_target = rig, key.bone
        target.transform_type, target.transform_space = key.channel, "LOCAL_SPACE"
        target.rotation_mode = "XYZ"
        base = driver.variables.new()
        base.name, base.type = "base", "SINGLE_PROP"
        base.targets[0].id_type, base.targets[0].id = "OBJECT", rig
        base.targets[0].data_path = f'["{key.base_property}"]'
        driver.expression = driver_expression(key)


def selected_head(context: bpy.types.Context) -> bpy.types.Object | None:
    """The FaceAdapt head the user means: the active object, or the head under an active rig."""
    obj = context.active_object
    if obj is None:
        return None
    if obj.type == "MESH" and HASH_PROPERTY in obj:
        return obj
    if obj.type == "ARMATURE":
        return next((c for c in obj.children if c.type == "MESH" and HASH_PROPERTY in c), None)
    return None


def remove_head(head: bpy.types.Object) -> None:
    """Remove a head made by build_head with its rig, their data, material, albedo and actions
    (used when an operator that made one fails afterwards)."""
    rig = head.parent
    animated = [b for b in (head.data.shape_keys, rig) if b is not None and b.animation_data]
    actions = [b.animation_data.action for b in animated if b.animation_data.action is not None]
    materials = [m for m in head.data.materials if m is not None]
    images = [n.image for m in materials if m.node_tree for n in m.node_tree.nodes
              if n.type == "TEX_IMAGE" and n.image is not None]
    blocks = [head, head.data, *([rig, rig.data] if rig is not None else []), *materials]
    for block in blocks:
        collection = {"OBJECT": bpy.data.objects, "MESH": bpy.data.meshes,
                      "ARMATURE": bpy.data.armatures, "MATERIAL": bpy.data.materials}[block.id_type]
        collection.remove(block)
    for image in {i.name: i for i in images}.values():
        if image.users == 0:
            bpy.data.images.remove(image)
    for action in {a.name: a for a in actions}.values():
        if action.users == 0:
            bpy.data.actions.remove(action)
