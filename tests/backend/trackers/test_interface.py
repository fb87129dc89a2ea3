"""The one tracker interface: every registered tracker, given what its entry asks for, returns
the documented per-frame output; the pipeline refuses an output that breaks it."""

import numpy as np
import pytest

from backend.detection_cache import detect_landmarks
from backend.events import EventSink
from backend.footage import Footage
from backend.trackers.interface import ClipFrames, Detections, TrackerInput, TrackerOutput
from backend.trackers.landmark_fit import FitConfig
from backend.trackers.registry import TRACKERS

FRAMES = 5
# Each tracker's quickest settings: the interface is under test here, not the accuracy.
QUICK_SETTINGS = {"landmark-fit": FitConfig(rigid_steps=20, full_steps=20)}


@pytest.mark.data
@pytest.mark.parametrize("name", list(TRACKERS))
def test_every_tracker_returns_the_documented_output(name, data_dir, default_head,
                                                     untrained_encoder_model):
    entry = TRACKERS[name]
    model_folder = untrained_encoder_model if entry.needs_model else None
    footage = Footage(data_dir / "videos/lp_driving_d0.mp4")
    frames = ClipFrames(footage, 0, FRAMES - 1)
    sink = EventSink(json_lines=False)
    info = footage.info
    clip = TrackerInput(
        head=default_head, frame_count=FRAMES, width=info.width, height=info.height, fps=info.fps,
        device="cpu", sink=sink,
        detections=detect_landmarks(frames, "mediapipe", "cpu", sink) if entry.needs_detections else None,
        frames=frames if entry.needs_frames else None, data_files=entry.resolve_data_files(),
        model_folder=model_folder)
    output = entry.create(QUICK_SETTINGS.get(name)).track(clip)
    output.check(name, FRAMES, default_head.num_vertices)
    assert output.tracked.all()  # a face in every frame of this clip
    assert output.vertices.dtype == output.head_pose.dtype == np.float32
    rotation = output.head_pose[:, :3, :3]
    identity = np.broadcast_to(np.eye(3), rotation.shape)
    np.testing.assert_allclose(rotation @ rotation.transpose(0, 2, 1), identity, atol=1e-4)
    # Head space is metres: the head stands tens of centimetres in front of the camera.
    assert (0.1 < output.head_pose[:, 2, 3]).all() and (output.head_pose[:, 2, 3] < 5).all()
    assert np.isfinite(output.residual_px).all()
    if not entry.needs_model:  # the model tracker runs an untrained encoder here
        assert (output.residual_px < 50).all()
    if output.weights is not None:
        assert output.weight_names == tuple(default_head.blendshape_names)
        assert 0 <= output.weights.min() and output.weights.max() <= 1


def _output(frames=3, vertices=10) -> TrackerOutput:
    tracked = np.ones(frames, bool)
    return TrackerOutput(
        vertices=np.zeros((frames, vertices, 3), np.float32),
        head_pose=np.tile(np.eye(4, dtype=np.float32), (frames, 1, 1)),
        intrinsics=np.eye(3, dtype=np.float32),
        landmarks=Detections(np.zeros((frames, 68, 2), np.float32), np.ones((frames, 68), np.float32),
                             tracked.copy()),
        landmarks_fit=np.zeros((frames, 68, 2), np.float32),
        residual_px=np.zeros(frames, np.float32),
        tracked=tracked)


def test_a_well_formed_output_passes_the_check():
    _output().check("test", 3, 10)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("vertices", np.zeros((3, 9, 3), np.float32), "vertices has shape"),
    ("head_pose", np.zeros((2, 4, 4), np.float32), "head_pose has shape"),
    ("landmarks_fit", np.zeros((3, 5, 2), np.float32), "landmarks_fit has shape"),
    ("tracked", np.ones(3, np.float32), "must be bool"),
    ("weights", np.zeros((3, 4), np.float32), "weights and weight_names"),
    ("latent", np.zeros((4, 8), np.float32), "latent has shape"),
])
def test_a_malformed_output_is_refused_naming_the_tracker_and_field(field, value, message):
    output = _output()
    setattr(output, field, value)
    with pytest.raises(ValueError, match=message) as refused:
        output.check("test-tracker", 3, 10)
    assert "test-tracker" in str(refused.value)


def test_nan_is_refused_on_tracked_frames_only():
    output = _output()
    output.tracked = np.array([True, False, True])
    output.residual_px[1] = np.nan  # an untracked frame's placeholder
    output.check("test", 3, 10)
    output.vertices[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="vertices holds NaN"):
        output.check("test", 3, 10)


def test_clip_frames_decode_on_every_pass_and_count_the_time(data_dir):
    frames = ClipFrames(Footage(data_dir / "videos/lp_driving_d0.mp4"), 2, 4)
    first = [image.copy() for image in frames]
    second = list(frames)
    assert len(frames) == len(first) == len(second) == 3
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert first[0].dtype == np.uint8 and first[0].shape[2] == 3
    assert frames.decode_s > 0
