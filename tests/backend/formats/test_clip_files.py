"""The ground-truth clip's files: performance.npz and truth.npz round trips and refusals."""

from __future__ import annotations

import numpy as np
import pytest

from backend.formats.clip_files import (
    PERFORMANCE_KEYS,
    TRUTH_FILE,
    TRUTH_KEYS,
    Performance,
    Truth,
    load_performance,
    load_truth,
)
from backend.formats.errors import BadInput
from conftest import rewrite_npz

FRAMES = 4


def performance() -> Performance:
    rng = np.random.default_rng(1)
    motion = np.tile(np.eye(4), (FRAMES, 1, 1))
    motion[:, 0, 3] = np.linspace(0, 0.03, FRAMES)
    return Performance(weight_names=("jawOpen", "eyeBlinkLeft"),
                       weights=rng.uniform(0, 1, (FRAMES, 2)).astype(np.float32),
                       head_motion=motion, fps=24.0, source="procedural: nod")


def truth() -> Truth:
    rng = np.random.default_rng(2)
    pose = np.tile(np.eye(4, dtype=np.float32), (FRAMES, 1, 1))
    pose[:, 2, 3] = 0.6
    return Truth(frames=np.arange(FRAMES), vertices=rng.normal(0, 0.1, (FRAMES, 5, 3)).astype(np.float32),
                 head_pose=pose, intrinsics=np.array([[80.0, 0, 31.5], [0, 80.0, 23.5], [0, 0, 1]],
                                                     np.float32),
                 weights=rng.uniform(0, 1, (FRAMES, 2)).astype(np.float32),
                 weight_names=("jawOpen", "eyeBlinkLeft"),
                 landmarks_2d=rng.uniform(0, 48, (FRAMES, 68, 2)).astype(np.float32), fps=24.0,
                 width=64, height=48)


# --- performance.npz -----------------------------------------------------------------------

def test_performance_round_trip(tmp_path):
    made = performance()
    path = made.save(tmp_path / "performance.npz")
    loaded = load_performance(path)
    assert loaded.weight_names == made.weight_names
    np.testing.assert_array_equal(loaded.weights, made.weights)
    np.testing.assert_array_equal(loaded.head_motion, made.head_motion)
    assert loaded.head_motion.dtype == np.float64
    assert (loaded.fps, loaded.source, loaded.frames) == (24.0, "procedural: nod", FRAMES)
    assert [p.name for p in tmp_path.iterdir()] == ["performance.npz"]


def test_performance_without_source_loads(tmp_path):
    path = rewrite_npz(performance().save(tmp_path / "performance.npz"), source=None)
    assert load_performance(path).source == ""


def test_on_channels_maps_by_name_and_leaves_the_rest_at_zero():
    made = performance()
    channels = ["browInnerUp", "eyeBlinkLeft", "mouthClose", "jawOpen"]
    mapped = made.on_channels(channels)
    assert mapped.shape == (FRAMES, 4) and mapped.dtype == np.float32
    np.testing.assert_array_equal(mapped[:, 3], made.weights[:, 0])
    np.testing.assert_array_equal(mapped[:, 1], made.weights[:, 1])
    assert not mapped[:, [0, 2]].any()


def test_on_channels_refuses_a_channel_the_head_lacks():
    with pytest.raises(BadInput, match=r"\(procedural: nod\) drives channels the head lacks: eyeBlinkLeft"):
        performance().on_channels(("jawOpen", "mouthClose"))


@pytest.mark.parametrize("key", PERFORMANCE_KEYS)
def test_performance_missing_field_is_named(tmp_path, key):
    path = rewrite_npz(performance().save(tmp_path / "performance.npz"), **{key: None})
    with pytest.raises(BadInput, match=rf"performance file .*performance\.npz lacks field\(s\) {key}"):
        load_performance(path)


@pytest.mark.parametrize(("changes", "problem"), [
    ({"weights": np.zeros((FRAMES, 3), np.float32)}, r"weights must be \(F, K\)"),
    ({"weights": np.zeros((0, 2), np.float32), "head_motion": np.zeros((0, 4, 4))},
     r"weights must be \(F, K\) with F >= 1"),
    ({"weights": np.full((FRAMES, 2), 1.5, np.float32)}, r"weights must be finite and in \[0, 1\]"),
    ({"weights": np.full((FRAMES, 2), np.nan, np.float32)}, r"weights must be finite and in \[0, 1\]"),
    ({"head_motion": np.tile(np.eye(4), (FRAMES - 1, 1, 1))}, "head_motion must be finite"),
    ({"head_motion": np.full((FRAMES, 4, 4), np.inf)}, "head_motion must be finite"),
    ({"fps": np.float64(0)}, "fps must be a positive number"),
    ({"fps": np.float64(np.nan)}, "fps must be a positive number"),
    ({"fps": np.array([24.0, 25.0])}, "fps must be a positive number"),
])
def test_performance_refusals_name_the_field(tmp_path, changes, problem):
    path = rewrite_npz(performance().save(tmp_path / "performance.npz"), **changes)
    with pytest.raises(BadInput, match=rf"performance file .*performance\.npz: {problem}"):
        load_performance(path)


def test_unreadable_performance_is_refused(tmp_path):
    path = tmp_path / "performance.npz"
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(BadInput, match=r"performance file .*performance\.npz cannot be read"):
        load_performance(path)


# --- truth.npz -----------------------------------------------------------------------------

def test_truth_round_trip_from_file_or_clip_folder(tmp_path):
    made = truth()
    made.save(tmp_path / TRUTH_FILE)
    for where in (tmp_path / TRUTH_FILE, tmp_path):
        loaded = load_truth(where)
        for key, value in made.as_arrays().items():
            np.testing.assert_array_equal(getattr(loaded, key) if key != "weight_names"
                                          else np.array(loaded.weight_names), value, err_msg=key)
        assert loaded.frames.dtype == np.int64 and loaded.vertices.dtype == np.float32
        assert (loaded.fps, loaded.width, loaded.height) == (24.0, 64, 48)


@pytest.mark.parametrize("key", TRUTH_KEYS)
def test_truth_missing_field_is_named(tmp_path, key):
    path = rewrite_npz(truth().save(tmp_path / TRUTH_FILE), **{key: None})
    with pytest.raises(BadInput, match=rf"ground truth .*truth\.npz lacks field\(s\) {key}"):
        load_truth(path)


WRONG_SHAPES = {
    "vertices": np.zeros((FRAMES, 5, 2), np.float32),
    "head_pose": np.zeros((FRAMES - 1, 4, 4), np.float32),
    "intrinsics": np.eye(4, dtype=np.float32),
    "weights": np.zeros((FRAMES, 3), np.float32),
    "landmarks_2d": np.zeros((FRAMES, 67, 2), np.float32),
}


@pytest.mark.parametrize("key", sorted(WRONG_SHAPES))
def test_truth_wrong_shape_is_named(tmp_path, key):
    path = rewrite_npz(truth().save(tmp_path / TRUTH_FILE), **{key: WRONG_SHAPES[key]})
    with pytest.raises(BadInput, match=rf"ground truth .*truth\.npz: field '{key}' must be"):
        load_truth(path)


@pytest.mark.parametrize("key", sorted(WRONG_SHAPES))
def test_truth_non_finite_is_named(tmp_path, key):
    value = truth().as_arrays()[key].copy()
    value.reshape(-1)[-1] = np.nan
    path = rewrite_npz(truth().save(tmp_path / TRUTH_FILE), **{key: value})
    with pytest.raises(BadInput, match=rf"ground truth .*truth\.npz: field '{key}' contains NaN or inf"):
        load_truth(path)


@pytest.mark.parametrize(("changes", "field"), [
    ({"frames": np.array([0.0, 1.0, 2.0, np.nan])}, "frames"),
    ({"frames": np.array(3)}, "frames"),
    ({"fps": np.float64(-24)}, "fps"),
    ({"width": np.int64(0)}, "width"),
    ({"height": np.array([48, 48])}, "height"),
])
def test_truth_frames_and_scalars_are_checked(tmp_path, changes, field):
    path = rewrite_npz(truth().save(tmp_path / TRUTH_FILE), **changes)
    with pytest.raises(BadInput, match=rf"ground truth .*truth\.npz: field '{field}'"):
        load_truth(path)


def test_missing_truth_is_refused(tmp_path):
    with pytest.raises(BadInput, match=r"ground truth .*truth\.npz (cannot be read|does not exist)"):
        load_truth(tmp_path)
