"""Placing the iBUG-68 landmarks on a head's surface by detecting them on renders of it.

Procedure (docs/landmarks.md): render the neutral head from a frontal and two turned views
(yaw +-20 degrees); detect the 68 points on each render with the MediaPipe detector; lift
every detected pixel onto the surface through the rasterizer (triangle + barycentrics ->
3D point in head space); take the per-point median over views (the frontal view only for the
jaw contour, whose 2D position depends on the silhouette); snap to the nearest allowed vertex.
The sliding jaw contour (points 0-7 and 9-16) gets `landmark_mask` False: a fixed vertex
cannot follow a silhouette, so trackers do not fit it; the chin (8) is kept.
The inner lips (61-63 upper, 65-67 lower) would share vertices on a closed neutral mouth;
they are detected again with the mouth opened by the head's `jawOpen` shape and matched, in
the image, to vertices of their own lip (`_split_inner_lips`). A head without jawOpen keeps
the neutral placement, with a warning.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ..formats.camera import centred_intrinsics, head_to_camera, pose_matrix
from ..formats.head_file import HeadAsset
from ..head_space import HEAD_TO_FRONT_CAMERA
from ..landmarks.mediapipe_detector import MediaPipeDetector
from ..render.rasterize import Fragments, barycentrics, interpolate, project
from ..render.shading import render_textured

JAW_CONTOUR = np.array([i for i in range(17) if i != 8])
VIEW_YAWS_DEG = (0.0, 20.0, -20.0)
IMAGE_SIZE = 512
CAMERA_DISTANCE_M = 0.6
FOCAL_PX = 1400.0
FLAT_SKIN = np.array([200, 160, 140], np.uint8)  # the colour of a head without an albedo
INNER_LIPS = np.array([61, 62, 63, 65, 66, 67])  # upper three, then lower three
MOUTH_OPENING_M = 0.010  # how far jawOpen parts the outer lips (51, 57) for the inner lips
MIN_JAW_OPENING_M = 0.002  # a jawOpen parting the lips less than this cannot split them


@dataclass
class Embedding:
    landmark_vertex: np.ndarray  # (68,) int64
    landmark_mask: np.ndarray  # (68,) bool
    surface_points: np.ndarray  # (68, 3) head space, before snapping (inner lips: opened head)
    views_found: int
    jaw_open_weight: float = 0.0  # jawOpen weight the inner lips were embedded at; 0: not split
    inner_lips_note: str | None = None  # why the inner lips were not split, or None


def view_camera(head: HeadAsset, yaw_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rotation (3, 3), translation (3,), intrinsics (3, 3)) of a camera looking at the face."""
    centre = head.vertices[head.face_region].mean(0)
    a = math.radians(yaw_deg)
    yaw = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    rotation = HEAD_TO_FRONT_CAMERA @ yaw
    translation = np.array([0, 0, CAMERA_DISTANCE_M]) - rotation @ centre
    return rotation, translation, centred_intrinsics(FOCAL_PX, IMAGE_SIZE, IMAGE_SIZE)


def albedo_for_rendering(head: HeadAsset) -> torch.Tensor:
    """(3, H, W) float in [0, 1]: the head's albedo, or FLAT_SKIN (1 x 1) without one."""
    albedo = head.albedo if head.albedo is not None else FLAT_SKIN[None, None, :]
    return torch.as_tensor(albedo).permute(2, 0, 1).float() / 255


def embed_landmarks(head: HeadAsset, snap_to: np.ndarray | None = None) -> Embedding:
    """Embed iBUG-68 landmarks on `head` (neutral shape, its albedo or a flat skin tone).

    snap_to: (V,) bool, vertices a landmark may snap to (default: the face region).
    The inner lips (61-63 upper, 65-67 lower) are placed on the head with its mouth opened by
    its `jawOpen` shape (see `_split_inner_lips`); a head without one keeps them where the
    neutral renders put them (on a closed mouth, upper and lower share vertices) and warns.
    """
    allowed = np.flatnonzero(head.face_region if snap_to is None else snap_to)
    albedo_t = albedo_for_rendering(head)
    # The direct pass: the shipped heads' landmark vertices were embedded so (the mirror-averaged
    # detections keep the same convention: landmarks/mediapipe_mirror.py).
    detector = MediaPipeDetector(video=False, with_mirror_pass=False)
    try:
        lifted = _detect_and_lift(head, head.vertices, albedo_t, detector)
        views_found = int(np.isfinite(lifted[:, 0, 0]).sum())
        if not np.isfinite(lifted[0]).all():
            raise RuntimeError("no face detected on the frontal render of the head: cannot embed "
                               "landmarks (is the head facing -Y, with eyes, nose and mouth?)")
        surface = np.nanmedian(lifted, axis=0)
        surface[JAW_CONTOUR] = lifted[0, JAW_CONTOUR]
        vertex = _snap(head.vertices, surface, allowed)
        inner_lips = _split_inner_lips(head, vertex, allowed, albedo_t, detector)
    finally:
        detector.close()
    if inner_lips.note is not None:
        warnings.warn(f"inner-lip landmarks: {inner_lips.note}", RuntimeWarning, stacklevel=2)
    else:
        vertex[INNER_LIPS] = inner_lips.vertex
        surface[INNER_LIPS] = inner_lips.surface
    mask = np.ones(68, bool)
    mask[JAW_CONTOUR] = False
    return Embedding(vertex.astype(np.int64), mask, surface, views_found,
                     inner_lips.jaw_open_weight, inner_lips.note)


@dataclass
class _InnerLips:
    vertex: np.ndarray  # (6,) vertex ids of INNER_LIPS
    surface: np.ndarray  # (6, 3) lifted points on the opened head, metres
    jaw_open_weight: float  # 0 when not split
    note: str | None  # why the inner lips were not split, or None


def _split_inner_lips(head: HeadAsset, vertex: np.ndarray, allowed: np.ndarray,
                      albedo_t: torch.Tensor, detector: MediaPipeDetector) -> _InnerLips:
    """Inner-lip vertices detected on the head with its mouth opened by `jawOpen`.

    On a closed neutral mouth the upper (61-63) and lower (65-67) inner-lip points are detected
    on the same seam and snap to the same vertices, so no fit can open the mouth in landmark
    space. Here the mouth is opened by jawOpen, weighted so the outer lip midpoints (51, 57, as
    embedded on the neutral head) part by MOUTH_OPENING_M; the six points are detected on renders
    of that head (the same three views) and matched in the image (`_nearest_visible`): upper
    points to allowed vertices jawOpen moves less than halfway between what it moves 51 and 57,
    lower points to those it moves more. vertex: (68,) the neutral embedding's vertex ids.
    Returns the neutral placement with a note when the head cannot be opened this way.
    """
    def kept(note: str) -> _InnerLips:
        return _InnerLips(vertex[INNER_LIPS], np.full((6, 3), np.nan), 0.0, note)

    if "jawOpen" not in head.blendshape_names:
        return kept("the head has no jawOpen shape, so upper and lower inner lips stay where "
                    "the closed neutral mouth puts them (they may share vertices)")
    jaw = head.blendshapes[head.blendshape_names.index("jawOpen")].astype(np.float64)
    motion = np.linalg.norm(jaw, axis=1)  # (V,) metres at weight 1
    upper_lip, lower_lip = motion[vertex[51]], motion[vertex[57]]
    opening = np.linalg.norm(jaw[vertex[57]] - jaw[vertex[51]])
    if opening < MIN_JAW_OPENING_M or lower_lip <= upper_lip:
        return kept(f"jawOpen parts the lips by only {opening * 1000:.1f} mm, so upper and "
                    f"lower inner lips stay where the closed neutral mouth puts them")
    weight = min(1.0, MOUTH_OPENING_M / opening)
    opened = head.vertices + weight * jaw
    threshold = (upper_lip + lower_lip) / 2
    moved = motion[allowed] >= threshold
    if moved.all() or not moved.any():
        return kept("jawOpen moves all or none of the face region, so upper and lower inner "
                    "lips stay where the closed neutral mouth puts them")
    views = [_render_and_detect(head, opened, albedo_t, detector, yaw) for yaw in VIEW_YAWS_DEG]
    if views[0].points is None:
        return kept("no face detected on the frontal render with the mouth opened by jawOpen, "
                    "so upper and lower inner lips stay where the closed neutral mouth puts them")
    upper = _nearest_visible(views, INNER_LIPS[:3], allowed[~moved])
    lower = _nearest_visible(views, INNER_LIPS[3:], allowed[moved])
    if upper is None or lower is None:
        return kept("no lip vertex is visible near an inner-lip point with the mouth opened by "
                    "jawOpen, so upper and lower inner lips stay where the closed neutral mouth "
                    "puts them")
    # Where the detections lift to on the opened head (inside the mouth for the lower points).
    surface = np.nanmedian(np.stack([v.lifted(opened, head.faces)[INNER_LIPS] for v in views
                                     if v.points is not None]), axis=0)
    return _InnerLips(np.concatenate([upper, lower]), surface, weight, None)


def _nearest_visible(views: list[_View], points: np.ndarray,
                     candidates: np.ndarray) -> np.ndarray | None:
    """(P,) for each landmark in `points` (P,) the candidate vertex (ids (C,)) whose projection
    lies nearest its detections, summed over the views that found a face (squared pixels), among
    candidates visible in all of them. A detection inside the open mouth lifts onto whatever
    lies behind it (tongue, mouth bag), so the inner lips are matched in the image instead.
    None when some point has no candidate visible in every view."""
    cost = np.zeros((len(points), len(candidates)))
    for view in views:
        if view.points is None:
            continue
        xy = view.screen[candidates, :2]
        cost += ((xy[None] - view.points[points][:, None]) ** 2).sum(-1)
        cost[:, ~view.visible(candidates)] = np.inf
    if not np.isfinite(cost).any(1).all():
        return None
    return candidates[cost.argmin(1)]


def _snap(vertices: np.ndarray, points: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """(P,) ids of the allowed vertices nearest to points (P, 3) (vertices (V, 3))."""
    dist = np.linalg.norm(vertices[allowed][None] - points[:, None], axis=-1)
    return allowed[dist.argmin(1)]


@dataclass
class _View:
    """One render of the head and what MediaPipe found on it."""

    points: np.ndarray | None  # (68, 2) detected pixels, None without a face
    screen: np.ndarray  # (V, 3) vertices' pixel x, y and camera depth (metres)
    fragments: Fragments
    cam: torch.Tensor  # (1, V, 3) camera-space vertices
    intrinsics: np.ndarray  # (3, 3)

    def visible(self, ids: np.ndarray) -> np.ndarray:
        """(N,) bool: vertices in the image and not behind the rendered surface (1 mm slack)."""
        depth = self.fragments.depth[0].numpy()
        height, width = depth.shape
        x, y = np.rint(self.screen[ids, 0]).astype(int), np.rint(self.screen[ids, 1]).astype(int)
        inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
        front = np.zeros(len(ids), bool)
        front[inside] = self.screen[ids[inside], 2] <= depth[y[inside], x[inside]] + 1e-3
        return front

    def lifted(self, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """(68, 3) surface points under the detected pixels (NaN if off-mesh)."""
        return lift_points(self.points, vertices, torch.as_tensor(faces), self.fragments, self.cam,
                           self.intrinsics)


def _render_and_detect(head: HeadAsset, vertices: np.ndarray, albedo_t: torch.Tensor,
                       detector: MediaPipeDetector, yaw: float) -> _View:
    """Render the head with `vertices` (V, 3) from the camera placed for the neutral head at
    `yaw` degrees and detect the 68 points on it."""
    rotation, translation, intrinsics = view_camera(head, yaw)
    # float64 keeps the embedding the default head has always had: a float32 pose moves
    # edge pixels of the render enough to change MediaPipe's detections (0.4 mm).
    pose = pose_matrix(rotation, translation, np.float64)
    cam = torch.as_tensor(head_to_camera(vertices, pose), dtype=torch.float32)[None]
    k = torch.as_tensor(intrinsics, dtype=torch.float32)
    image, fragments = render_textured(cam, torch.as_tensor(head.faces), torch.as_tensor(head.uv),
                                       torch.as_tensor(head.uv_faces), albedo_t, k,
                                       IMAGE_SIZE, IMAGE_SIZE)
    # nan_to_num: an opened mouth can leave a degenerate triangle's pixel NaN (the ICT head).
    detection = detector.detect((torch.nan_to_num(image[0]).numpy() * 255).astype(np.uint8))
    return _View(detection.points if detection.found else None, project(cam, k)[0].numpy(),
                 fragments, cam, intrinsics)


def _detect_and_lift(head: HeadAsset, vertices: np.ndarray, albedo_t: torch.Tensor,
                     detector: MediaPipeDetector) -> np.ndarray:
    """(views, 68, 3) surface points under the 68 points detected on renders of the head with
    `vertices` (V, 3) (cameras placed for the neutral head); NaN for a view without a face."""
    lifted = np.full((len(VIEW_YAWS_DEG), 68, 3), np.nan)
    for index, yaw in enumerate(VIEW_YAWS_DEG):
        view = _render_and_detect(head, vertices, albedo_t, detector, yaw)
        if view.points is not None:
            lifted[index] = view.lifted(vertices, head.faces)
    return lifted


def lift_points(points: np.ndarray, vertices: np.ndarray, faces: torch.Tensor, fragments,
                cam: torch.Tensor, intrinsics: np.ndarray) -> np.ndarray:
    """Head-space surface points (P, 3) under 2D pixels (P, 2) of one render of the mesh
    (vertices (V, 3), faces (T, 3)); NaN if off-mesh."""
    screen = project(cam, torch.as_tensor(intrinsics, dtype=torch.float32))
    weights = barycentrics(screen, faces, fragments)
    position = interpolate(torch.as_tensor(vertices, dtype=torch.float32), faces, fragments,
                           weights)[0].numpy()
    covered = fragments.mask[0].numpy()
    ys, xs = np.nonzero(covered)
    out = np.full((len(points), 3), np.nan)
    for i, (x, y) in enumerate(points):
        # The nearest covered pixel: a contour point may sit just off the silhouette.
        nearest = np.argmin((xs - x) ** 2 + (ys - y) ** 2)
        if (xs[nearest] - x) ** 2 + (ys[nearest] - y) ** 2 <= 25:
            out[i] = position[ys[nearest], xs[nearest]]
    return out
