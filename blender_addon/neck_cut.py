"""A clean neck: the head's material cuts the neck off at a plane in head space, above the
ragged bottom edge of the mesh.

The default head's neck ends in a jagged row of triangles (its bottom boundary climbs from
-4 to 11 mm in head space), which show as stray spikes below the jaw in renders. Removing
them would change the head's topology, which its face model and every result are tied to; the
material instead makes the surface transparent below a height taken from the rest pose (a
point attribute, interpolated across each triangle, so the cut is straight whatever the
triangles and follows the head as it moves).
"""

from __future__ import annotations

import bpy
import numpy as np

REST_HEIGHT_ATTRIBUTE = "faceadapt_rest_height"  # rest-pose z (head space, metres) per vertex
CUT_NODE = "FaceAdapt Neck Cut"
CUT_MARGIN_M = 0.002  # above the highest point of the ragged edge


def neck_cut_height(vertices: np.ndarray, faces: np.ndarray, chin_height: float) -> float | None:
    """The height (m, head space) to cut the neck at: just above the highest vertex of the mesh's
    open boundary below the chin (the neck's bottom edge); None when the mesh has no open edge
    there (a closed neck, nothing ragged to hide). vertices (V, 3), faces (T, 3)."""
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    unique, counts = np.unique(edges, axis=0, return_counts=True)
    boundary = np.unique(unique[counts == 1])
    low = boundary[vertices[boundary, 2] < chin_height]
    if len(low) == 0:
        return None
    return float(vertices[low, 2].max()) + CUT_MARGIN_M


def add_neck_cut(mesh: bpy.types.Mesh, material: bpy.types.Material, rest: np.ndarray,
                 height: float) -> None:
    """Store the rest heights on `mesh` and make `material` transparent below `height`."""
    attribute = mesh.attributes.new(REST_HEIGHT_ATTRIBUTE, "FLOAT", "POINT")
    attribute.data.foreach_set("value", np.asarray(rest, np.float32)[:, 2])
    tree = material.node_tree
    output = next(n for n in tree.nodes if n.type == "OUTPUT_MATERIAL")
    surface = output.inputs["Surface"].links[0].from_socket
    heights = tree.nodes.new("ShaderNodeAttribute")
    heights.attribute_name, heights.attribute_type = REST_HEIGHT_ATTRIBUTE, "GEOMETRY"
    above = tree.nodes.new("ShaderNodeMath")
    above.operation = "GREATER_THAN"
    above.inputs[1].default_value = height
    above.name = above.label = CUT_NODE
    mix = tree.nodes.new("ShaderNodeMixShader")
    transparent = tree.nodes.new("ShaderNodeBsdfTransparent")
    tree.links.new(heights.outputs["Fac"], above.inputs[0])
    tree.links.new(above.outputs["Value"], mix.inputs["Fac"])
    tree.links.new(transparent.outputs["BSDF"], mix.inputs[1])
    tree.links.new(surface, mix.inputs[2])
    tree.links.new(mix.outputs["Shader"], output.inputs["Surface"])
