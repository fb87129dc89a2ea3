"""The head as Blender data: one mesh builder and one skin material, for the add-on's rigged
head (head_builder), the rendered ground-truth clips (clip_scene) and the silhouette check
(render_silhouette).

Functions that create datablocks append `(bpy.data collection, datablock)` to `created` when
given one, so a caller that fails half-way can remove what was made (operators change
nothing when they fail).
"""

from __future__ import annotations

import bpy
import numpy as np

DEFAULT_SKIN_RGB = (0.78, 0.58, 0.47)  # linear albedo when the head file has none

Created = list[tuple[object, object]]


def head_mesh(name: str, vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray | None = None,
              uv_faces: np.ndarray | None = None, created: Created | None = None) -> bpy.types.Mesh:
    """A smooth-shaded triangle mesh: vertices (V, 3) metres, faces (T, 3), and when given the
    UV map uv (U, 2) indexed per corner by uv_faces (T, 3). Vertex and triangle order are kept,
    so per-vertex arrays (shape keys, tracked vertices) apply as they are."""
    vertices = np.asarray(vertices, np.float32)
    faces = np.asarray(faces, np.int32)
    mesh = bpy.data.meshes.new(name)
    if created is not None:
        created.append((bpy.data.meshes, mesh))
    mesh.vertices.add(len(vertices))
    mesh.vertices.foreach_set("co", vertices.ravel())
    mesh.loops.add(faces.size)
    mesh.loops.foreach_set("vertex_index", faces.ravel())
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    mesh.polygons.foreach_set("loop_total", np.full(len(faces), 3, np.int32))
    mesh.polygons.foreach_set("use_smooth", np.ones(len(faces), bool))
    if uv is not None and uv_faces is not None:
        corner_uv = np.asarray(uv, np.float32)[np.asarray(uv_faces, np.int64)]
        mesh.uv_layers.new(name="UVMap").data.foreach_set("uv", corner_uv.ravel())
    mesh.update()
    mesh.validate()
    if len(mesh.polygons) != len(faces):
        raise ValueError(f"the triangles of '{name}' do not form a valid mesh")
    return mesh


def skin_material(name: str, albedo: np.ndarray | None, created: Created | None = None,
                  ) -> bpy.types.Material:
    """Principled BSDF skin (roughness 0.5, a little specular) whose base colour is the albedo
    (H, W, 3) uint8 (row 0 = top, v = 1) through the UV map, or a plain skin tone without one.
    No subsurface scattering: at clip resolutions it barely shows and costs a sixth of the
    render time."""
    material = bpy.data.materials.new(f"{name} Skin")
    if created is not None:
        created.append((bpy.data.materials, material))
    tree = material.node_tree
    tree.nodes.clear()
    output = tree.nodes.new("ShaderNodeOutputMaterial")
    bsdf = tree.nodes.new("ShaderNodeBsdfPrincipled")
    bsdf.inputs["Roughness"].default_value = 0.5
    bsdf.inputs["Specular IOR Level"].default_value = 0.3
    tree.links.new(bsdf.outputs["BSDF"], output.inputs["Surface"])
    if albedo is None:
        bsdf.inputs["Base Color"].default_value = (*DEFAULT_SKIN_RGB, 1.0)
        return material
    rows, cols = albedo.shape[:2]
    image = bpy.data.images.new(f"{name} Albedo", cols, rows, alpha=False)
    if created is not None:
        created.append((bpy.data.images, image))
    rgba = np.ones((rows, cols, 4), np.float32)
    rgba[..., :3] = albedo[::-1] / 255.0  # Blender image rows start at the bottom
    image.pixels.foreach_set(rgba.ravel())
    image.pack()  # keep the pixels with the datablock: a generated image would regenerate
    texture = tree.nodes.new("ShaderNodeTexImage")
    texture.image = image
    texture.interpolation = "Linear"
    tree.links.new(texture.outputs["Color"], bsdf.inputs["Base Color"])
    return material
