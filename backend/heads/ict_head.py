"""The ICT FaceKit head (MIT) from `$FACEADAPT_DATA/heads/ict-facekit`: tests and benchmarks.

Converted from its convention (centimetres, +Y up, face toward +Z) to head space. All 26,719
vertices are kept (eyes, mouth socket, teeth) so its own vertex ids, e.g. its iBUG-68
landmark ids, stay valid.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..formats.errors import BadInput
from ..formats.head_file import HeadAsset
from .arkit import to_arkit_spelling

FACE_VERTICES = 9409  # ids 0-9408: the face (vertex_indices.json upstream)
SKIN_VERTICES = 11248  # ids 0-11247: face, head and neck; mouth, eyes, teeth... follow
EYEBALL_VERTICES = slice(21451, 24591)
NECK_BASE_BAND_M = 0.02  # vertices this close above the lowest neck vertex define the pivot


def ict_to_head_space(points_cm: np.ndarray) -> np.ndarray:
    p = np.asarray(points_cm, dtype=np.float64) * 0.01
    return np.stack([p[..., 0], -p[..., 2], p[..., 1]], axis=-1)


def load_ict_head(npz_path: Path) -> tuple[HeadAsset, np.ndarray]:
    """(head with the ICT-shipped landmark ids, those 68 ids). Landmarks are all unmasked."""
    try:
        with np.load(npz_path) as d:
            data = {k: d[k] for k in d.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise BadInput(f"ICT FaceKit file {npz_path} cannot be read ({exc})") from exc
    vertices = ict_to_head_space(data["neutral"])
    quads, quads_uv = data["faces_quads"], data["faces_uv"]
    tri = quads[:, 3] < 0
    faces = np.concatenate([quads[:, [0, 1, 2]], quads[~tri][:, [0, 2, 3]]])
    uv_faces = np.concatenate([quads_uv[:, [0, 1, 2]], quads_uv[~tri][:, [0, 2, 3]]])
    # The inner meshes (eyes, teeth, gums, lashes) reuse the skin's UV square (upstream they have
    # textures of their own) and would own half of the skin's texels in any UV raster: unwrapped
    # footage and lab textures would lose them. One corner texel, off the skin's layout, takes
    # all their corners instead: the skin keeps its whole texture, the inner meshes one colour.
    uv = np.concatenate([data["uv"], [[0.5 / 1024, 0.5 / 1024]]])
    inner = ~(faces < SKIN_VERTICES).all(1)
    uv_faces[inner] = len(uv) - 1
    neck = vertices[FACE_VERTICES:SKIN_VERTICES]
    lowest = neck[:, 2].min()
    base = neck[neck[:, 2] < lowest + NECK_BASE_BAND_M]
    pivot = np.array([0.0, base[:, 1].mean(), base[:, 2].mean()])
    deltas = ict_to_head_space(data["deltas"].astype(np.float32))
    face_region = np.zeros(len(vertices), bool)
    face_region[:FACE_VERTICES] = True
    ids = data["landmarks68_vertex_idx"].astype(np.int64)
    head = HeadAsset(
        vertices=(vertices - pivot).astype(np.float32),
        faces=faces.astype(np.int64),
        uv=uv.astype(np.float32),
        uv_faces=uv_faces.astype(np.int64),
        blendshapes=deltas.astype(np.float32),
        blendshape_names=[to_arkit_spelling(str(n)) for n in data["names"]],
        landmark_vertex=ids,
        landmark_mask=np.ones(68, bool),
        face_region=face_region,
    )
    return head, ids


def ict_eye_centres(head: HeadAsset) -> np.ndarray:
    """(2, 3) centres of the left (+X) and right eyeball."""
    eyes = head.vertices[EYEBALL_VERTICES]
    return np.stack([eyes[eyes[:, 0] > 0].mean(0), eyes[eyes[:, 0] < 0].mean(0)])


def ict_head_with_albedo() -> HeadAsset:
    """The ICT head from FACEADAPT_DATA with a procedural skin-and-brows albedo (none ships)."""
    from ..data_location import data_file
    from .procedural_albedo import paint_skin_albedo

    head, _ = load_ict_head(data_file("heads/ict-facekit/ict_facekit.npz"))
    head.albedo = paint_skin_albedo(head.vertices, head.faces, head.uv, head.uv_faces,
                                    ict_eye_centres(head))
    return head


ACTOR_PALETTE_SEED = 3


def ict_actor_head() -> HeadAsset:
    """The ICT head as a stand-in actor (`personal-truth-benchmark`): a deep brown skin, thick
    near-black brows and dark lips painted on it."""
    from ..data_location import data_file
    from .procedural_albedo import Palette, paint_skin_albedo

    head, ids = load_ict_head(data_file("heads/ict-facekit/ict_facekit.npz"))
    palette = Palette(skin=(0.40, 0.26, 0.18), brow=(0.04, 0.035, 0.03), lips=(0.27, 0.13, 0.13),
                      brow_thickness=1.5)
    head.albedo = paint_skin_albedo(head.vertices, head.faces, head.uv, head.uv_faces,
                                    ict_eye_centres(head), seed=ACTOR_PALETTE_SEED, palette=palette,
                                    lip_outline=head.vertices[ids[48:60]].astype(np.float64))
    return head
