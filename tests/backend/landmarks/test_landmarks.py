import numpy as np
import pytest

from backend.formats.errors import BadInput
from backend.landmarks.annotations import read_pts
from backend.landmarks.nme import nme


def test_annotations_scored_against_themselves_give_zero(tmp_path):
    pts = tmp_path / "a.pts"
    rows = "\n".join(f"{10 + i} {20 + (i % 7)}" for i in range(68))
    pts.write_text(f"version: 1\nn_points: 68\n{{\n{rows}\n}}\n")
    points = read_pts(pts)
    assert points[0].tolist() == [9.0, 19.0]  # 1-based file -> 0-based pixels
    assert nme(points, points) == 0.0


def test_bad_pts_file(tmp_path):
    pts = tmp_path / "bad.pts"
    pts.write_text("version: 1\n{\n1 2\n}\n")
    with pytest.raises(BadInput, match=r"bad\.pts"):
        read_pts(pts)


def test_mediapipe_finds_no_face_in_a_blank_image():
    from backend.landmarks.mediapipe_detector import MediaPipeDetector

    detector = MediaPipeDetector(video=False)
    detection = detector.detect(np.full((256, 256, 3), 90, np.uint8))
    detector.close()
    assert not detection.found and detection.confidence.sum() == 0


@pytest.mark.data
def test_mediapipe_nme_on_annotated_photos(data_dir):
    from PIL import Image

    from backend.landmarks.mediapipe_detector import MediaPipeDetector
    from backend.landmarks.mediapipe_mapping import annotated_photos

    detector = MediaPipeDetector(video=False)
    scores = []
    for image_path, pts_path in annotated_photos(data_dir / "landmarks"):
        detection = detector.detect(np.asarray(Image.open(image_path).convert("RGB")))
        assert detection.found, image_path
        scores.append(nme(detection.points, read_pts(pts_path)))
    detector.close()
    assert len(scores) == 5 and np.mean(scores) < 0.05


def test_fan_without_weights_names_the_missing_file(tmp_path, monkeypatch):
    from backend.landmarks.detector_factory import create_detector

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("FACEADAPT_FAN_WEIGHTS", raising=False)
    with pytest.raises(BadInput, match=r"2DFAN4-11f355bf06\.pth\.tar") as error:
        create_detector("fan", video=False)
    assert str(tmp_path / "torch") in error.value.message and "FACEADAPT_FAN_WEIGHTS" in error.value.message
