"""`bake-textures`: a DAM-tracked clip's textures decoded for another camera, written as
textures/<view>/ inside the results directory, and every refusal before any decoding."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from backend.cli import main
from backend.dam.model_folder import DEFAULT_MODEL, load_model, load_model_head, model_record
from backend.decoded_textures import write_decoded_textures
from backend.events import EventSink
from backend.formats.camera_file import CameraFile
from backend.formats.errors import BadInput
from backend.formats.results_dir import TrackingArrays, read_results, write_arrays, write_summary
from backend.texture_baking import DAM_MODEL_FIELD, BakeTexturesConfig, bake_textures
from conftest import yawed_poses

FRAMES = np.array([7, 8, 9])
SOURCE = {"path": "/clips/actor.mp4", "fps": 25.0, "width": 64, "height": 48,
          "frame_range": [7, 9], "frame_count": 20}


@pytest.fixture(scope="module")
def head():
    return load_model_head(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def model():
    return load_model(DEFAULT_MODEL)[0]


def write_results(directory: Path, head, latent: bool = True, record: dict | None = None) -> Path:
    """A results directory as a DAM tracker writes it: 3 frames, latent zeros, the head a
    little turned on each frame."""
    count = len(FRAMES)
    optional = {"latent": np.zeros((count, 64), np.float32)} if latent else {}
    tracking = TrackingArrays(
        frames=FRAMES, vertices=np.repeat(head.vertices[None], count, 0),
        head_pose=yawed_poses(head, [0.0, 5.0, -5.0]),
        intrinsics=np.array([[60.0, 0, 31.5], [0, 60.0, 23.5], [0, 0, 1]]),
        confidence=np.ones(count), landmarks_2d=np.zeros((count, 68, 2)),
        landmarks_conf=np.ones((count, 68)), landmarks_fit=np.zeros((count, 68, 2)),
        optional=optional)
    directory.mkdir(parents=True)
    write_arrays(directory, tracking, head)
    summary = {"tracker": "encoder" if latent else "landmark-fit", "source": SOURCE, "model": "default"}
    if record is not None:
        summary[DAM_MODEL_FIELD] = record
    write_summary(directory, summary, head)
    return directory


def camera_file(path: Path, poses: dict[int, np.ndarray]) -> Path:
    intrinsics = np.array([[60.0, 0, 31.5], [0, 60.0, 23.5], [0, 0, 1]])
    return CameraFile(64, 48, intrinsics, poses).save(path)


def own_camera(results: Path, path: Path) -> Path:
    """The footage camera as a camera file: the results' own head_pose per frame."""
    tracked = read_results(results)
    return camera_file(path, {int(f): p for f, p in zip(tracked.frames, tracked.head_pose,
                                                          strict=True)})


def read_png(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def bake(results: Path, camera: Path, **options) -> Path:
    return bake_textures(BakeTexturesConfig(results=results, camera=camera, **options),
                         EventSink(False))


def test_the_footage_camera_bakes_the_footage_view_and_another_differs(head, model, tmp_path):
    results = write_results(tmp_path / "r", head, record=model_record("default", DEFAULT_MODEL))
    tracked = read_results(results)
    footage = results / "textures" / "footage"
    write_decoded_textures(footage, tracked.tracking["latent"], tracked.head_pose, tracked.frames,
                           model, head, "cpu", EventSink(False))
    baked = bake(results, own_camera(results, tmp_path / "shot_cam.json"))
    assert baked == results / "textures" / "shot_cam"
    names = sorted(p.name for p in baked.iterdir())
    assert names == ["000007.png", "000008.png", "000009.png"]
    assert names == sorted(p.name for p in footage.iterdir())
    for name in names:
        np.testing.assert_array_equal(read_png(baked / name), read_png(footage / name))

    # Another camera: the footage's turned 30 degrees about the head's vertical axis.
    turned = camera_file(tmp_path / "turned.json", dict(zip(
        map(int, FRAMES), yawed_poses(head, [30.0, 35.0, 25.0]), strict=True)))
    other = bake(results, turned)
    for name in names:
        difference = np.abs(read_png(other / name).astype(int) - read_png(footage / name))
        assert difference.mean() > 0.5, name
    assert sorted(p.name for p in (results / "textures").iterdir()) == ["footage", "shot_cam",
                                                                        "turned"]
    assert read_results(results).frames.tolist() == FRAMES.tolist()  # still a results directory


def test_a_camera_file_may_cover_some_frames(head, tmp_path: Path):
    results = write_results(tmp_path / "r", head)
    camera = camera_file(tmp_path / "cam.json", {8: yawed_poses(head, [10.0])[0]})
    baked = bake(results, camera, view="close_up")
    assert [p.name for p in baked.iterdir()] == ["000008.png"]


def test_the_cli_bakes(head, tmp_path: Path, capfd: pytest.CaptureFixture):
    results = write_results(tmp_path / "r", head)
    camera = own_camera(results, tmp_path / "cam-2.json")
    assert main(["bake-textures", str(results), "--camera", str(camera), "--device", "cpu"]) == 0
    assert (results / "textures" / "cam-2" / "000009.png").is_file()
    assert "records no model" in capfd.readouterr().err  # no dam_model: the default, said so


def test_frames_the_results_lack_are_named(head, tmp_path: Path):
    results = write_results(tmp_path / "r", head)
    poses = yawed_poses(head, [0.0, 0.0, 0.0])
    camera = camera_file(tmp_path / "cam.json", {8: poses[0], 12: poses[1], 30: poses[2]})
    with pytest.raises(BadInput, match=r"has 2 frame\(s\) the results .* lack: 12, 30 .*7-9"):
        bake(results, camera)
    assert not (results / "textures").exists()


def test_results_without_latent_are_refused(head, tmp_path: Path):
    results = write_results(tmp_path / "r", head, latent=False)
    with pytest.raises(BadInput, match=r"hold no latent codes .*landmark-fit.*--tracker encoder"):
        bake(results, own_camera(results, tmp_path / "cam.json"))


@pytest.mark.parametrize("view, message", [("projected", "footage unwrapped"),
                                           ("../escape", "letters, digits"), ("a b", "letters"),
                                           ("", "letters")])
def test_bad_view_names_are_refused(head, tmp_path: Path, view: str, message: str):
    results = write_results(tmp_path / "r", head)
    with pytest.raises(BadInput, match=message):
        bake(results, own_camera(results, tmp_path / "cam.json"), view=view)
    with pytest.raises(BadInput, match="camera file's name"):
        bake(results, own_camera(results, tmp_path / "my cam.json"))
    assert not (results / "textures").exists()


def test_an_existing_view_is_kept_without_overwrite(head, tmp_path: Path):
    results = write_results(tmp_path / "r", head)
    camera = own_camera(results, tmp_path / "cam.json")
    view = results / "textures" / "cam"
    view.mkdir(parents=True)
    (view / "000007.png").write_bytes(b"the user's")
    with pytest.raises(BadInput, match="already exists; pass --overwrite"):
        bake(results, camera)
    assert [p.name for p in view.iterdir()] == ["000007.png"]
    assert (view / "000007.png").read_bytes() == b"the user's"
    bake(results, camera, overwrite=True)
    assert sorted(p.name for p in view.iterdir()) == ["000007.png", "000008.png", "000009.png"]
    assert read_png(view / "000007.png").shape == (256, 256, 3)
    assert sorted(p.name for p in (results / "textures").iterdir()) == ["cam"]  # no temp left


def test_another_model_is_refused(head, tmp_path: Path):
    record = {**model_record("default", DEFAULT_MODEL), "weights": "0123456789abcdef"}
    results = write_results(tmp_path / "r", head, record=record)
    with pytest.raises(BadInput, match="holds other weights"):
        bake(results, own_camera(results, tmp_path / "cam.json"))
    # A model of another topology: a copy of the default whose model.json names another.
    other = tmp_path / "other"
    other.mkdir()
    for name in ("weights.safetensors", "head.npz"):
        (other / name).symlink_to(DEFAULT_MODEL / name)
    info = json.loads((DEFAULT_MODEL / "model.json").read_text())
    (other / "model.json").write_text(json.dumps(info))
    plain = write_results(tmp_path / "plain", head)
    (plain / "result.json").write_text(json.dumps(
        {**json.loads((plain / "result.json").read_text()), "topology_hash": "ffffffffffffffff"}))
    np.savez(plain / "mesh.npz", **{**dict(np.load(plain / "mesh.npz")),
                                    "topology_hash": np.array("ffffffffffffffff")})
    with pytest.raises(BadInput, match=r"topology ffffffffffffffff.*pass --model"):
        bake(plain, own_camera(plain, tmp_path / "cam.json"), model=str(other))
