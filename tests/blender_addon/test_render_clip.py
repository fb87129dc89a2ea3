"""Integration test of blender_addon.render_clip: a tiny synthetic head rendered with Cycles.

The ground truth must describe the pixels: the object silhouette rendered by Blender must match
a rasterization (at integer pixel centres) of the truth vertices projected with the truth pose
and intrinsics. A half-pixel or axis-flip error in the Blender -> OpenCV camera conversion moves
the centroid of one mask against the other by >= 0.5 px; the check allows 0.3 px (shading makes
the rendered mask grow unevenly at its edges: measured offsets stay within 0.2 px).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from backend.evaluation.performances import procedural_performance
from conftest import blender_program

pytestmark = pytest.mark.blender
pytest.importorskip("bpy")
Image = pytest.importorskip("PIL.Image")

REPO = Path(__file__).resolve().parents[2]
CENTRE = np.array([0.0, -0.02, 0.12])  # sphere centre in head space (m): above the neck pivot
RADIUS = 0.09


def _sphere(n_lat: int = 12, n_lon: int = 24) -> tuple[np.ndarray, ...]:
    """A UV sphere: vertices (V, 3), faces (T, 3) counter-clockwise from outside, uv (U, 2) on a
    (n_lat + 1) x (n_lon + 1) grid (seam and poles duplicated in UV only), uv_faces (T, 3)."""
    theta = np.pi * np.arange(1, n_lat) / n_lat  # polar angle from +Z, interior rings
    phi = 2.0 * np.pi * np.arange(n_lon) / n_lon
    ring = np.stack(
        [
            np.outer(np.sin(theta), np.cos(phi)),
            np.outer(np.sin(theta), np.sin(phi)),
            np.outer(np.cos(theta), np.ones(n_lon)),
        ],
        -1,
    ).reshape(-1, 3)
    vertices = CENTRE + RADIUS * np.concatenate([[[0, 0, 1], [0, 0, -1]], ring])

    def vertex(i: int, j: int) -> int:
        return 0 if i == 0 else 1 if i == n_lat else 2 + (i - 1) * n_lon + j % n_lon

    corners = []  # triangles as (i, j) grid corners
    for i in range(n_lat):
        for j in range(n_lon):
            quad = [(i, j), (i, j + 1), (i + 1, j + 1), (i + 1, j)]
            if i > 0:
                corners.append([quad[0], quad[1], quad[3]])
            if i < n_lat - 1:
                corners.append([quad[1], quad[2], quad[3]])
    faces = np.array([[vertex(i, j) for i, j in tri] for tri in corners], np.int32)
    uv_faces = np.array([[i * (n_lon + 1) + j for i, j in tri] for tri in corners], np.int32)
    grid_i, grid_j = np.mgrid[0 : n_lat + 1, 0 : n_lon + 1]
    uv = np.stack([grid_j / n_lon, 1.0 - grid_i / n_lat], -1).reshape(-1, 2)
    # Orient every triangle outward.
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    inward = np.einsum("tc,tc->t", np.cross(b - a, c - a), a + b + c - 3 * CENTRE) < 0
    faces[inward] = faces[inward][:, ::-1]
    uv_faces[inward] = uv_faces[inward][:, ::-1]
    return vertices.astype(np.float32), faces, uv.astype(np.float32), uv_faces


def _write_head(path: Path) -> dict[str, np.ndarray]:
    """A red sphere head with two blendshapes and 68 landmarks on its camera-facing cap."""
    vertices, faces, uv, uv_faces = _sphere()
    front = vertices[:, 1] < CENTRE[1] - 0.6 * RADIUS  # faces the camera (at -Y)
    jaw = np.zeros_like(vertices)
    jaw[front & (vertices[:, 2] < CENTRE[2]), 2] = -0.01
    blink = np.zeros_like(vertices)
    blink[front & (vertices[:, 2] > CENTRE[2]), 1] = 0.005
    albedo = np.zeros((32, 32, 3), np.uint8)
    albedo[...] = (210, 30, 30)
    albedo[::8] = (120, 10, 10)  # latitude stripes, so the texture is not uniform
    head = {
        "vertices": vertices,
        "faces": faces,
        "uv": uv,
        "uv_faces": uv_faces,
        "blendshapes": np.stack([jaw, blink]).astype(np.float32),
        "blendshape_names": np.array(["jawOpen", "eyeBlinkLeft"]),
        "landmark_vertex": np.resize(np.flatnonzero(front), 68).astype(np.int32),
        "landmark_mask": np.ones(68, bool),
        "face_region": front,
        "albedo": albedo,
        "neck_pivot": np.zeros(3, np.float32),
    }
    np.savez(path, **head)
    return head


def _write_performance(path: Path, frames: int, seed: int = 3) -> Path:
    """A procedural performance of the sphere head's two channels at 24 fps."""
    return procedural_performance(("jawOpen", "eyeBlinkLeft"), frames, 24.0, seed).save(path)


def _run(tmp_path: Path, head: Path, out: Path, *extra: str, frames: int = 3,
         performance: Path | None = None) -> subprocess.CompletedProcess:
    """Run the program in its own process, with Blender's user resources in tmp_path."""
    env = {**os.environ, "BLENDER_USER_RESOURCES": str(tmp_path / "blender_user")}
    if performance is None:
        performance = _write_performance(tmp_path / f"performance{frames}.npz", frames)
    cmd = blender_program(
        "render_clip",
        "--head",
        str(head),
        "--performance",
        str(performance),
        "--out",
        str(out),
        *extra,
    )
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def _rasterize(pix: np.ndarray, faces: np.ndarray, height: int, width: int) -> np.ndarray:
    """Mask (H, W) of pixel centres (integer coordinates) inside any triangle of pix (V, 2)."""
    ys, xs = np.mgrid[0:height, 0:width]
    mask = np.zeros((height, width), bool)
    for a, b, c in pix[faces]:

        def edge(p: np.ndarray, q: np.ndarray) -> np.ndarray:
            return (q[0] - p[0]) * (ys - p[1]) - (q[1] - p[1]) * (xs - p[0])

        e0, e1, e2 = edge(a, b), edge(b, c), edge(c, a)
        mask |= ((e0 >= 0) & (e1 >= 0) & (e2 >= 0)) | ((e0 <= 0) & (e1 <= 0) & (e2 <= 0))
    return mask


def _object_mask(frame: np.ndarray) -> np.ndarray:
    """Pixels (H, W) the object covers on the flat grey background: their colour differs from
    the background's (a corner's) by more than a fifth of the object's typical difference.

    A low threshold keeps highlights and dark stripes inside the mask; it also takes in edge
    pixels covered well under half, which grows the mask about evenly all round: its centroid
    stays put while its area grows a little.
    """
    rgb = frame.astype(np.float64)
    distance = np.abs(rgb - np.median(rgb[:4, :4].reshape(-1, 3), 0)).sum(-1)
    return distance > 0.2 * np.percentile(distance, 99)


def test_clip_ground_truth_matches_pixels(tmp_path: Path) -> None:
    head_path = tmp_path / "head.npz"
    head = _write_head(head_path)
    out = tmp_path / "clip"
    run = _run(
        tmp_path,
        head_path,
        out,
        "--width",
        "112",
        "--height",
        "96",
        "--samples",
        "4",
        "--background",
        "plain",
        "--seed",
        "3",
    )
    assert run.returncode == 0, run.stderr
    assert '"stage":"render","done":3,"total":3' in run.stderr  # progress events
    assert not list(tmp_path.glob(".clip*"))  # the temporary directory was renamed

    clip = json.loads((out / "clip.json").read_text())
    assert (clip["frames"], clip["width"], clip["height"], clip["seed"]) == (3, 112, 96, 3)
    truth = np.load(out / "truth.npz", allow_pickle=False)
    n_verts = len(head["vertices"])
    assert truth["frames"].tolist() == [0, 1, 2]
    assert truth["vertices"].shape == (3, n_verts, 3)
    assert truth["head_pose"].shape == (3, 4, 4)
    assert truth["weights"].shape == (3, 2)
    assert truth["weight_names"].tolist() == ["jawOpen", "eyeBlinkLeft"]
    assert truth["landmarks_2d"].shape == (3, 68, 2)
    assert (int(truth["width"]), int(truth["height"]), float(truth["fps"])) == (112, 96, 24.0)
    np.testing.assert_allclose(truth["intrinsics"][:2, 2], [55.5, 47.5])
    np.testing.assert_allclose(
        truth["vertices"],
        head["vertices"] + np.einsum("fk,kvc->fvc", truth["weights"], head["blendshapes"]),
        atol=1e-6,
    )

    intrinsics = truth["intrinsics"].astype(np.float64)
    for i in range(3):
        frame = np.asarray(Image.open(out / "frames" / f"{i:06d}.png"))
        assert frame.shape == (96, 112, 3) and frame.dtype == np.uint8
        pose = truth["head_pose"][i].astype(np.float64)
        cam = truth["vertices"][i] @ pose[:3, :3].T + pose[:3, 3]
        assert (cam[:, 2] > 0).all()  # in front of the camera (+Z forward)
        pix = (cam @ intrinsics.T)[:, :2] / (cam @ intrinsics.T)[:, 2:3]
        rendered, projected = _object_mask(frame), _rasterize(pix, head["faces"], 96, 112)
        iou = (rendered & projected).sum() / (rendered | projected).sum()
        assert iou > 0.93, f"frame {i}: silhouette IoU {iou:.3f}"
        offset = np.argwhere(rendered).mean(0) - np.argwhere(projected).mean(0)
        assert np.abs(offset).max() < 0.3, f"frame {i}: centroid offset (y, x) {offset}"
        cols, rows = np.round(truth["landmarks_2d"][i]).astype(int).T
        assert rendered[rows, cols].all(), f"frame {i}: a landmark misses the object"


def test_room_clip_and_output_directory_rules(tmp_path: Path) -> None:
    head_path = tmp_path / "head.npz"
    _write_head(head_path)
    out = tmp_path / "clip"
    args = ("--width", "64", "--height", "64", "--samples", "2")
    assert _run(tmp_path, head_path, out, *args, frames=2).returncode == 0
    assert sorted(p.name for p in (out / "frames").iterdir()) == ["000000.png", "000001.png"]
    frame = np.asarray(Image.open(out / "frames" / "000000.png"))
    assert frame.std(axis=(0, 1)).min() > 5  # a cluttered background, not a flat one

    first = dict(np.load(out / "truth.npz", allow_pickle=False))
    marker = out / "frames" / "stale.png"  # inside the program's own output: replaced with it
    marker.touch()
    refused = _run(tmp_path, head_path, out, *args, frames=2)
    assert refused.returncode == 2 and "exists" in refused.stderr
    assert marker.exists()
    assert _run(tmp_path, head_path, out, *args, "--overwrite", frames=2).returncode == 0
    assert not marker.exists()
    second = np.load(out / "truth.npz", allow_pickle=False)
    for key in ("vertices", "head_pose", "weights", "landmarks_2d"):  # the seed decides all
        np.testing.assert_array_equal(second[key], first[key])
    assert not list(tmp_path.glob(".clip*"))  # neither temporary nor replaced output is left


@pytest.mark.parametrize("case", ["other files", "holds the head"])
def test_overwrite_never_deletes_a_folder_it_did_not_render(tmp_path: Path, case: str) -> None:
    """--overwrite replaces only a folder this program rendered: never one of other files, nor
    the folder holding its own input (issue 11: `--overwrite` deleted the footage's folder)."""
    if case == "other files":
        out = tmp_path / "renders"
        out.mkdir()
        (out / "clip.json").write_text('{"render_seconds": 1}')
        (out / "lookdev.blend").write_bytes(b"a user's scene")
        head_path = tmp_path / "head.npz"
    else:
        out = tmp_path / "shot"
        out.mkdir()
        head_path = out / "head.npz"
    _write_head(head_path)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    run = _run(tmp_path, head_path, out, "--width", "32", "--height", "32", "--samples", "1",
               "--overwrite", frames=1)
    assert run.returncode == 2, run.stderr
    assert str(out) in run.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not list(tmp_path.glob(f".{out.name}*"))


def test_bad_head_file_is_refused(tmp_path: Path) -> None:
    head_path = tmp_path / "head.npz"
    np.savez(head_path, vertices=np.zeros((4, 3), np.float32))
    run = _run(tmp_path, head_path, tmp_path / "clip")
    assert run.returncode == 2 and "lacks" in run.stderr
    assert not (tmp_path / "clip").exists()


@pytest.mark.parametrize("light,background", [("environment", "world"), ("hard", "room"),
                                              ("studio", "plain")])
def test_domain_options_render_and_are_recorded(tmp_path: Path, light: str, background: str) -> None:
    head_path = tmp_path / "head.npz"
    _write_head(head_path)
    out = tmp_path / "clip"
    run = _run(tmp_path, head_path, out, "--width", "64", "--height", "64", "--samples", "2",
               "--light", light, "--background", background, "--lens-mm", "24",
               "--motion-blur", "0.5", frames=2)
    assert run.returncode == 0, run.stderr
    clip = json.loads((out / "clip.json").read_text())
    assert (clip["light"], clip["background"], clip["motion_blur"]) == (light, background, 0.5)
    # 24 mm on a 36 mm sensor across 64 px; the camera comes closer than the default 0.62 m.
    assert clip["focal_px"] == pytest.approx(24 / 36 * 64, rel=1e-4)
    assert clip["camera_distance_m"] < 0.62
    assert clip["truth_vertex_deviation_m"] < 1e-5
    frame = np.asarray(Image.open(out / "frames" / "000001.png")).astype(float)
    assert frame.mean() > 10 and frame.std() > 5  # lit, not black or flat


def test_bad_performance_file_is_refused(tmp_path: Path) -> None:
    head_path = tmp_path / "head.npz"
    _write_head(head_path)
    stranger = procedural_performance(("jawOpen", "mouthPucker"), 2, 24.0, 0)
    run = _run(tmp_path, head_path, tmp_path / "clip",
               performance=stranger.save(tmp_path / "stranger.npz"))
    assert run.returncode == 2 and "mouthPucker" in run.stderr
    np.savez(tmp_path / "empty.npz", weights=np.zeros((2, 1), np.float32))
    run = _run(tmp_path, head_path, tmp_path / "clip", performance=tmp_path / "empty.npz")
    assert run.returncode == 2 and "lacks" in run.stderr
    assert not (tmp_path / "clip").exists()


@pytest.fixture(scope="module")
def unoccluded(tmp_path_factory: pytest.TempPathFactory, default_head_file: Path) -> Path:
    """Three tiny frames of the default head on the flat grey world, nothing over the face."""
    root = tmp_path_factory.mktemp("unoccluded")
    run = _run(root, default_head_file, root / "clip", *OCCLUDER_RENDER, "--occluder", "none")
    assert run.returncode == 0, run.stderr
    return root / "clip"


OCCLUDER_RENDER = ("--width", "64", "--height", "64", "--samples", "1", "--background", "plain",
                   "--seed", "5")


@pytest.mark.parametrize("occluder", ["glasses", "hand"])
def test_an_occluder_covers_part_of_the_face(tmp_path: Path, default_head_file: Path,
                                             unoccluded: Path, occluder: str) -> None:
    """The same clip with an occluder: the truth is the same, the pixels differ where it is, and
    clip.json counts the landmarks it hides (a ray from the camera meets it first). The hand
    rises from below the frame: out of view on the first frame, over the mouth on the middle."""
    out = tmp_path / "clip"
    run = _run(tmp_path, default_head_file, out, *OCCLUDER_RENDER, "--occluder", occluder)
    assert run.returncode == 0, run.stderr
    clip = json.loads((out / "clip.json").read_text())
    assert clip["occluder"] == occluder
    hidden = clip["occluded_landmarks"]
    for key in ("vertices", "head_pose", "landmarks_2d"):
        np.testing.assert_array_equal(np.load(out / "truth.npz")[key], np.load(unoccluded / "truth.npz")[key])

    def changed(frame: int) -> float:  # fraction of pixels the occluder changed clearly
        a, b = (np.asarray(Image.open(folder / "frames" / f"{frame:06d}.png")).astype(int)
                for folder in (out, unoccluded))
        return float((np.abs(a - b).sum(-1) > 60).mean())

    # Thin rims change about 2 % of a 64-px frame (1.8 % on Blender 5.3), a hand far more.
    assert changed(1) > (0.01 if occluder == "glasses" else 0.02) and hidden[1] > 3
    if occluder == "hand":
        assert hidden[0] == 0 and changed(0) < 0.25 * changed(1)
        assert hidden[1] < clip["placed_landmarks"]  # partly: the eyes stay in view
    else:
        assert min(hidden) > 0  # worn on every frame
