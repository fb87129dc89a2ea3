"""The scene of a rendered clip: camera, head object, lights, surroundings and Cycles settings.

Every choice a benchmark domain varies is a parameter here: the light rig (LIGHTS), the
surroundings (BACKGROUNDS), what partly covers the face (OCCLUDERS: glasses on the head, a hand
moving in front of the lower face; our own geometry built from simple primitives), the lens and
the shutter. Random content (wallpaper, clutter, the environment's sky) comes from the
generator the caller seeds.
"""

from __future__ import annotations

import math
import os

import bpy
import numpy as np
from mathutils import Vector

from ..backend.formats.clip_files import RENDER_BACKGROUNDS, RENDER_LIGHTS, RENDER_OCCLUDERS
from ..backend.formats.head_file import HeadAsset
from .camera_conversion import fitted_size
from .head_mesh import head_mesh, skin_material

CAMERA_DISTANCE_M = 0.62  # camera to face centre without --lens-mm
SENSOR_WIDTH_MM = 36.0  # full-frame width: --lens-mm is a 35 mm-equivalent focal length
WALL_DEPTH_M = 1.6  # face centre to the back wall
FACE_FILL = 0.5  # fraction of the image height taken by the face, chin to hairline
# iBUG landmarks span chin to brows, about two thirds of the face length (chin to hairline).
FACE_LENGTH_PER_LANDMARK_SPAN = 1.5
LIGHTS = RENDER_LIGHTS
BACKGROUNDS = RENDER_BACKGROUNDS
OCCLUDERS = RENDER_OCCLUDERS
OCCLUDER_PREFIX = "Occluder"  # objects that hide the face (counted by occluded_landmarks)
LENS_PREFIX = "GlassesLens"  # see-through: rays continue past them
# The hand's path as (fraction of the clip, offset from its covering place, m): it rises from
# below the frame, covers the mouth and chin, drifts a little and leaves.
HAND_PATH = ((0.0, (0.10, 0.0, -0.30)), (0.3, (0.0, 0.0, 0.0)), (0.7, (0.012, 0.0, 0.01)),
             (0.95, (0.10, 0.0, -0.30)))


def face_frame(vertices: np.ndarray, landmark_points: np.ndarray) -> tuple[np.ndarray, float]:
    """Face centre (3,) in head space, metres, and face length (chin to hairline), metres, from
    the head's placed landmark vertices (M, 3)."""
    points = landmark_points.astype(np.float64)
    z_min, z_max = points[:, 2].min(), points[:, 2].max()
    length = FACE_LENGTH_PER_LANDMARK_SPAN * (z_max - z_min)
    centre = np.array([points[:, 0].mean(), points[:, 1].mean(), z_min + 0.5 * length])
    return centre, length


def add_camera(face_centre: np.ndarray, face_length: float, width: int, height: int,
               lens_mm: float | None) -> tuple[np.ndarray, float]:
    """A static camera in front of the face (at -Y, looking along +Y, +Z up) framing the face at
    FACE_FILL of the image height: at CAMERA_DISTANCE_M with the focal length that does it, or
    with the 35 mm-equivalent `lens_mm` at the distance that does it (a 24 mm phone selfie
    comes close and shows strong perspective, an 85 mm portrait lens stands back).
    Returns the tangents (2,) of the horizontal and vertical half angles of view and the
    camera's distance to the face centre, metres."""
    cam = bpy.data.cameras.new("Camera")
    cam.sensor_width = SENSOR_WIDTH_MM
    cam.sensor_fit = "AUTO"
    cam.clip_start, cam.clip_end = 0.05, 50.0
    sensor_mm, fit_px = fitted_size(cam.sensor_fit, cam.sensor_width, cam.sensor_height, width, height)
    if lens_mm is None:
        distance = CAMERA_DISTANCE_M
        focal_px = FACE_FILL * height * distance / face_length
    else:
        focal_px = lens_mm * fit_px / sensor_mm
        distance = focal_px * face_length / (FACE_FILL * height)
    cam.lens = focal_px * sensor_mm / fit_px
    obj = bpy.data.objects.new("Camera", cam)
    obj.location = Vector(face_centre) + Vector((0.0, -distance, 0.0))
    obj.rotation_euler = (math.pi / 2.0, 0.0, 0.0)  # camera -Z -> world +Y, camera +Y -> +Z
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.scene.camera = obj
    return np.array([width, height]) / (2.0 * focal_px), distance


def _new_material(name: str) -> tuple[bpy.types.Material, bpy.types.NodeTree]:
    """An empty node material and its tree with only a Material Output node."""
    mat = bpy.data.materials.new(name)
    tree = mat.node_tree
    tree.nodes.clear()
    tree.nodes.new("ShaderNodeOutputMaterial")
    return mat, tree


def add_head(head: HeadAsset) -> bpy.types.Object:
    """The head as a smooth-shaded, UV-mapped mesh object with its skin at the world origin."""
    mesh = head_mesh("Head", head.vertices, head.faces, head.uv, head.uv_faces)
    mesh.materials.append(skin_material("Head", head.albedo))
    obj = bpy.data.objects.new("Head", mesh)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def _aim(obj: bpy.types.Object, target: np.ndarray) -> None:
    """Point an object's -Z axis (where lights shine) at `target` (3,), keeping +Y up."""
    direction = Vector(target) - obj.location
    obj.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()


def add_lights(kind: str, face_centre: np.ndarray) -> None:
    """The light rig `kind` (one of LIGHTS) around the face:
    - coloured: a warm key area light from the camera's left, a dim cool fill from its right and
      a rim light from behind: a lit room, not an even studio;
    - studio: two large white soft boxes, even and nearly shadowless;
    - hard: one small-angle sun from high on the right, deep shadows and no fill but the world;
    - environment: no lamps, the world (add_environment) lights the head;
    - window: one large cool daylight soft box at the face's side (a window), the other half of
      the face in shadow;
    - neon: saturated magenta and cyan lamps from either side, dim: strong colour casts."""
    if kind == "environment":
        return
    if kind == "hard":
        sun = bpy.data.lights.new("Sun", "SUN")
        sun.energy, sun.angle, sun.color = 6.0, math.radians(1.0), (1.0, 0.95, 0.88)
        obj = bpy.data.objects.new("Sun", sun)
        obj.location = Vector(face_centre) + Vector((0.8, -0.5, 0.6))
        _aim(obj, face_centre)
        bpy.context.scene.collection.objects.link(obj)
        return
    rigs = {  # name, offset from the face centre (m), RGB, watts, size (m)
        "coloured": (
            ("Key", (-0.55, -0.45, 0.35), (1.0, 0.78, 0.55), 25.0, 0.35),
            ("Fill", (0.65, -0.45, -0.05), (0.6, 0.74, 1.0), 3.0, 0.6),
            ("Rim", (0.35, 0.55, 0.45), (1.0, 0.93, 0.85), 20.0, 0.3),
        ),
        "studio": (
            ("Key", (-0.5, -0.6, 0.3), (1.0, 1.0, 1.0), 30.0, 1.0),
            ("Fill", (0.55, -0.6, 0.1), (1.0, 1.0, 1.0), 18.0, 1.0),
        ),
        "window": (
            ("Window", (0.85, -0.2, 0.15), (0.82, 0.9, 1.0), 70.0, 1.2),
        ),
        "neon": (
            ("Magenta", (-0.5, -0.4, 0.2), (1.0, 0.12, 0.55), 28.0, 0.2),
            ("Cyan", (0.55, -0.15, 0.35), (0.1, 0.85, 1.0), 22.0, 0.2),
        ),
    }[kind]
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


def add_room(face_centre: np.ndarray, half_view: np.ndarray, camera_distance: float,
             rng: np.random.Generator) -> None:
    """A back wall WALL_DEPTH_M behind the face, filling the view (half_view (2,): tangents of
    the horizontal and vertical half angles) with a busy wallpaper, a few coloured boxes between
    it and the head (never in front of the head). camera_distance: camera to face centre, m."""
    wall_distance = camera_distance + WALL_DEPTH_M
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
        x, z = rng.uniform(-0.9, 0.9, 2) * half_view * (camera_distance + depth)
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


def add_gradient_world(top: tuple[float, ...], bottom: tuple[float, ...], strength: float) -> None:
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


def environment_image(rng: np.random.Generator, rows: int = 128, cols: int = 256) -> np.ndarray:
    """An equirectangular environment (rows, cols, 3) float32 linear RGB, row 0 = straight up:
    a sky graded to a warm horizon over darker ground, coloured blocks on the horizon
    (buildings, trees) and one bright window or sun patch at a random bearing, HDR (up to ~40)
    so that it casts a directional key light."""
    elevation = (0.5 - (np.arange(rows) + 0.5) / rows)[:, None] * math.pi  # +pi/2 up
    azimuth = ((np.arange(cols) + 0.5) / cols * 2.0 - 1.0)[None] * math.pi
    sky_top, horizon = np.array(_random_colour(rng)) * 0.6 + 0.2, np.array([0.9, 0.75, 0.6])
    ground = np.array(_random_colour(rng)) * 0.3
    up = np.clip(np.sin(elevation), 0.0, 1.0)[..., None]
    image = np.where(elevation[..., None] > 0, horizon + (sky_top - horizon) * up**0.5, ground)
    image = np.broadcast_to(image, (rows, cols, 3)).copy()
    for _ in range(12):  # blocks standing on the horizon
        left, width = rng.integers(0, cols), rng.integers(cols // 40, cols // 10)
        top = rows // 2 - rng.integers(rows // 30, rows // 6)
        image[top : rows // 2, left : left + width] = np.array(_random_colour(rng)) * 0.5
    bearing, height = rng.uniform(-0.6, 0.6) * math.pi, rng.uniform(0.15, 0.7)
    patch = np.exp(-((azimuth - bearing) ** 2 + (elevation - height) ** 2) / (2 * 0.12**2))
    image += 40.0 * patch[..., None] * np.array([1.0, 0.95, 0.85])
    return image.astype(np.float32)


def add_environment(rng: np.random.Generator, strength: float) -> None:
    """A world lit by environment_image (importance-sampled: it holds a small bright patch)."""
    rgb = environment_image(rng)
    rows, cols = rgb.shape[:2]
    image = bpy.data.images.new("Environment", cols, rows, alpha=False, float_buffer=True)
    rgba = np.ones((rows, cols, 4), np.float32)
    rgba[..., :3] = rgb[::-1]  # Blender image rows start at the bottom
    image.pixels.foreach_set(rgba.ravel())
    image.pack()
    world = bpy.data.worlds.new("World")
    bpy.context.scene.world = world
    nodes, links = world.node_tree.nodes, world.node_tree.links
    nodes.clear()
    tex = nodes.new("ShaderNodeTexEnvironment")
    tex.image = image
    background = nodes.new("ShaderNodeBackground")
    background.inputs["Strength"].default_value = strength
    output = nodes.new("ShaderNodeOutputWorld")
    links.new(tex.outputs["Color"], background.inputs["Color"])
    links.new(background.outputs["Background"], output.inputs["Surface"])
    world.cycles.sampling_method = "AUTOMATIC"


def add_surroundings(background: str, light: str, face_centre: np.ndarray, half_view: np.ndarray,
                     camera_distance: float, rng: np.random.Generator) -> None:
    """The world and what stands behind the head. `background` (BACKGROUNDS): room = a
    cluttered procedural room; plain = a flat grey world (geometry checks); world = the
    environment seen directly. The environment lights the head when `light` is "environment"
    or the background is "world"; otherwise a dim sky-like gradient adds ambient light."""
    if background == "plain":
        add_gradient_world(top=(0.5, 0.5, 0.5), bottom=(0.5, 0.5, 0.5), strength=1.0)
        return
    if background == "room":
        add_room(face_centre, half_view, camera_distance, rng)
    if light == "environment" or background == "world":
        add_environment(rng, strength=1.0 if light == "environment" else 0.35)
    else:
        add_gradient_world(top=(0.35, 0.42, 0.55), bottom=(0.25, 0.2, 0.16), strength=0.5)


def configure_render(width: int, height: int, samples: int, seed: int, motion_blur: float) -> bool:
    """Cycles on all CPU cores, the output format, motion blur over `motion_blur` of a frame
    (0: none), and denoising when this build has it. Returns whether frames are denoised."""
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.seed = seed
    scene.cycles.use_animated_seed = True  # fresh noise per frame, like a sensor
    scene.cycles.max_bounces = 3
    scene.cycles.use_light_tree = False  # three lights at most: the tree costs more than it saves
    scene.render.threads_mode = "FIXED"
    scene.render.threads = _core_count()
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
    scene.render.film_transparent = False
    scene.render.use_motion_blur = motion_blur > 0
    scene.render.motion_blur_shutter = max(motion_blur, 0.01)
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


# --- occluders ------------------------------------------------------------------------------


def _mesh_object(name: str, vertices: np.ndarray, faces: list[tuple[int, ...]],
                 material: bpy.types.Material) -> bpy.types.Object:
    """A smooth-shaded mesh object from vertices (N, 3) and polygons, linked to the scene."""
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(vertices.tolist(), [], faces)
    mesh.shade_smooth()
    mesh.materials.append(material)
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def _grid_faces(rows: int, cols: int, wrap_rows: bool) -> list[tuple[int, int, int, int]]:
    """Quads of a rows x cols vertex grid, columns wrapping around (and rows when `wrap_rows`)."""
    faces = []
    for i in range(rows if wrap_rows else rows - 1):
        for j in range(cols):
            a, b = i * cols + j, i * cols + (j + 1) % cols
            c, d = ((i + 1) % rows) * cols + (j + 1) % cols, ((i + 1) % rows) * cols + j
            faces.append((a, b, c, d))
    return faces


def ellipse_ring(centre: np.ndarray, half_x: float, half_z: float, tube: float, around: int = 40,
                 section: int = 8) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """A torus-like ring in the XZ plane (facing the camera along Y): an ellipse of half axes
    half_x, half_z (m) swept by a circle of radius `tube`. Returns vertices (N, 3), quads."""
    u = 2.0 * math.pi * np.arange(around) / around
    v = 2.0 * math.pi * np.arange(section) / section
    path = np.stack([half_x * np.cos(u), np.zeros(around), half_z * np.sin(u)], -1)
    outward = np.stack([np.cos(u), np.zeros(around), np.sin(u)], -1)
    ring = (path[:, None] + tube * (np.cos(v)[None, :, None] * outward[:, None]
                                    + np.sin(v)[None, :, None] * np.array([0.0, 1.0, 0.0])))
    return centre + ring.reshape(-1, 3), _grid_faces(around, section, True)


def ellipsoid(centre: np.ndarray, radii: np.ndarray, rotation: np.ndarray | None = None,
              rings: int = 8, segments: int = 12) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """An ellipsoid (radii (3,) m along its own axes, turned by rotation (3, 3)) at `centre`:
    vertices (N, 3) and polygons (quads, triangle fans at the poles)."""
    theta = math.pi * np.arange(1, rings) / rings
    phi = 2.0 * math.pi * np.arange(segments) / segments
    body = np.stack([np.outer(np.sin(theta), np.cos(phi)), np.outer(np.sin(theta), np.sin(phi)),
                     np.outer(np.cos(theta), np.ones(segments))], -1).reshape(-1, 3)
    unit = np.concatenate([body, [[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]]])
    points = unit * radii
    if rotation is not None:
        points = points @ rotation.T
    faces: list[tuple[int, ...]] = list(_grid_faces(rings - 1, segments, False))
    top, bottom, last = len(body), len(body) + 1, (rings - 2) * segments
    faces += [(top, (j + 1) % segments, j) for j in range(segments)]
    faces += [(bottom, last + j, last + (j + 1) % segments) for j in range(segments)]
    return centre + points, faces


def _join(parts: list[tuple[np.ndarray, list[tuple[int, ...]]]]) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """One vertex array and polygon list from several (vertices, polygons) parts."""
    vertices, faces, offset = [], [], 0
    for points, polygons in parts:
        vertices.append(points)
        faces += [tuple(i + offset for i in polygon) for polygon in polygons]
        offset += len(points)
    return np.concatenate(vertices), faces


def _principled(name: str, rgb: tuple[float, float, float], roughness: float) -> bpy.types.Material:
    mat, tree = _new_material(name)
    bsdf = tree.nodes.new("ShaderNodeBsdfPrincipled")
    bsdf.inputs["Base Color"].default_value = (*rgb, 1.0)
    bsdf.inputs["Roughness"].default_value = roughness
    tree.links.new(bsdf.outputs["BSDF"], tree.nodes["Material Output"].inputs["Surface"])
    return mat


def _lens_material() -> bpy.types.Material:
    """Clear glass without refraction (cheap): mostly transparent, a little mirror (2%: at 5%
    and more, large soft boxes' reflections turned the lenses white and hid the eyes)."""
    mat, tree = _new_material("GlassesLens")
    clear = tree.nodes.new("ShaderNodeBsdfTransparent")
    gloss = tree.nodes.new("ShaderNodeBsdfGlossy")
    gloss.inputs["Roughness"].default_value = 0.08
    mix = tree.nodes.new("ShaderNodeMixShader")
    mix.inputs["Fac"].default_value = 0.02
    tree.links.new(clear.outputs["BSDF"], mix.inputs[1])
    tree.links.new(gloss.outputs["BSDF"], mix.inputs[2])
    tree.links.new(mix.outputs["Shader"], tree.nodes["Material Output"].inputs["Surface"])
    return mat


def _landmark_mean(landmarks: np.ndarray, indices: range | list[int]) -> np.ndarray:
    """Mean (3,) of the placed landmarks (rows not NaN) among `indices` of landmarks (68, 3)."""
    points = landmarks[list(indices)]
    points = points[np.isfinite(points).all(1)]
    if not len(points):
        raise ValueError(f"the head places none of the landmarks {list(indices)}")
    return points.mean(0)


def add_glasses(head_obj: bpy.types.Object, landmarks: np.ndarray) -> list[bpy.types.Object]:
    """Glasses on the head (parented, so they follow its motion): two elliptical rims and a
    bridge of dark plastic before the eyes, temple arms back towards the ears, and clear lenses.
    landmarks: (68, 3) head space, NaN where the head places none. Returns the objects."""
    right, left = _landmark_mean(landmarks, range(36, 42)), _landmark_mean(landmarks, range(42, 48))
    iod = float(np.linalg.norm(left - right))
    front = min(float(np.nanmin(landmarks[[27, 28], 1])), right[1], left[1])
    plane = front - 0.12 * iod  # the lenses' plane, in front of the nose bridge (-Y)
    height = 0.5 * (right[2] + left[2]) + 0.04 * iod
    half_x, half_z, tube = 0.42 * iod, 0.3 * iod, 0.04 * iod
    centres = [np.array([eye[0], plane, height]) for eye in (right, left)]
    inner = [c[0] + sign * half_x for c, sign in zip(centres, (1.0, -1.0), strict=True)]
    outer = [c[0] - sign * half_x for c, sign in zip(centres, (1.0, -1.0), strict=True)]
    middle = 0.5 * (inner[0] + inner[1])
    parts = [ellipse_ring(c, half_x, half_z, tube) for c in centres]
    parts.append(ellipsoid(np.array([middle, plane, height + 0.12 * iod]),
                           np.array([abs(inner[1] - inner[0]) / 2 + tube, tube, tube])))
    for x in outer:  # temple arms from the rims' outer edges back to the ears
        start = np.array([x, plane, height + 0.1 * iod])
        end = start + np.array([math.copysign(0.25 * iod, x - middle), 1.6 * iod, -0.05 * iod])
        direction = (end - start) / np.linalg.norm(end - start)
        basis_z = direction
        basis_x = np.cross(np.array([0.0, 0.0, 1.0]), basis_z)
        basis_x /= np.linalg.norm(basis_x)
        rotation = np.stack([basis_x, np.cross(basis_z, basis_x), basis_z], 1)
        parts.append(ellipsoid((start + end) / 2, np.array([tube, 0.8 * tube,
                                                             np.linalg.norm(end - start) / 2]), rotation))
    vertices, faces = _join(parts)
    frame = _mesh_object(OCCLUDER_PREFIX + "Glasses", vertices, faces,
                         _principled("GlassesFrame", (0.015, 0.012, 0.01), 0.25))
    lens_parts = [ellipsoid(c, np.array([half_x, 0.1 * tube, half_z]), segments=24) for c in centres]
    lenses = _mesh_object(LENS_PREFIX, *_join(lens_parts), _lens_material())
    for obj in (frame, lenses):
        obj.parent = head_obj  # the head's object transform is identity at rest
    return [frame, lenses]


def hand_mesh() -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """A hand from ellipsoids in its own frame (m; origin at the palm's centre, fingers along
    +Z, back of the hand towards -Y): a flat palm, four fingers and a thumb."""
    parts = [ellipsoid(np.zeros(3), np.array([0.042, 0.014, 0.048]))]
    for x, length in ((-0.027, 0.036), (-0.009, 0.041), (0.009, 0.039), (0.026, 0.031)):
        parts.append(ellipsoid(np.array([x, 0.0, 0.046 + length]), np.array([0.0085, 0.0085, length])))
    angle = math.radians(-50.0)
    turn = np.array([[math.cos(angle), 0.0, math.sin(angle)], [0.0, 1.0, 0.0],
                     [-math.sin(angle), 0.0, math.cos(angle)]])
    parts.append(ellipsoid(np.array([-0.052, -0.004, 0.012]), np.array([0.011, 0.011, 0.033]), turn))
    return _join(parts)


def add_hand(landmarks: np.ndarray, n_frames: int) -> bpy.types.Object:
    """A hand in front of the lower face (world space: it does not follow the head), fingers
    tilted up across the mouth and chin, moving along HAND_PATH over the clip's n_frames frames
    (keyframed, so motion blur sees it move). landmarks: (68, 3) rest head space, NaN where the
    head places none."""
    mouth = _landmark_mean(landmarks, range(48, 68))
    front = float(np.nanmin(landmarks[:, 1]))
    vertices, faces = hand_mesh()
    hand = _mesh_object(OCCLUDER_PREFIX + "Hand", vertices, faces,
                        _principled("Hand", (0.52, 0.31, 0.22), 0.55))
    hand.rotation_euler = (0.0, math.radians(-35.0), 0.0)  # fingers up and to the image's left
    # The palm below the mouth's corner (image right), the fingers across the mouth and chin.
    cover = np.array([mouth[0] + 0.04, front - 0.03, mouth[2] - 0.055])
    for fraction, offset in HAND_PATH:
        hand.location = Vector(cover + np.array(offset))
        hand.keyframe_insert("location", frame=round(fraction * max(n_frames - 1, 0)))
    return hand


def add_occluder(kind: str, head_obj: bpy.types.Object, landmarks: np.ndarray,
                 n_frames: int) -> list[bpy.types.Object]:
    """The occluder `kind` (one of OCCLUDERS) for a clip of n_frames frames: none, glasses worn
    by the head, or a hand moving in front of the lower face. landmarks: (68, 3) rest head
    space, NaN where the head places none. Returns the objects added."""
    if kind == "none":
        return []
    if kind == "glasses":
        return add_glasses(head_obj, landmarks)
    if kind == "hand":
        return [add_hand(landmarks, n_frames)]
    raise ValueError(f"unknown occluder {kind!r}; one of {', '.join(OCCLUDERS)}")


def occluded_landmarks(points: np.ndarray, max_hops: int = 4) -> np.ndarray:
    """(M,) bool: which world points (M, 3) an occluder hides from the scene's camera at the
    current frame (a ray from the camera to the point meets an OCCLUDER_PREFIX object first;
    see-through lenses are passed, the head hiding itself is not counted)."""
    scene = bpy.context.scene
    depsgraph = bpy.context.evaluated_depsgraph_get()
    origin = np.array(scene.camera.matrix_world.translation)
    hidden = np.zeros(len(points), bool)
    for i, point in enumerate(points):
        start, remaining = origin.copy(), float(np.linalg.norm(point - origin))
        direction = (point - origin) / remaining
        for _ in range(max_hops):
            hit, location, _, _, obj, _ = scene.ray_cast(depsgraph, Vector(start), Vector(direction),
                                                          distance=remaining - 1e-4)
            if not hit or not obj.name.startswith(LENS_PREFIX):
                hidden[i] = bool(hit) and obj.name.startswith(OCCLUDER_PREFIX)
                break
            step = float(np.dot(np.array(location) - start, direction)) + 1e-4
            start, remaining = start + step * direction, remaining - step
    return hidden
