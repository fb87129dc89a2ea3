import json
import shutil
from pathlib import Path

import pytest
import torch

from backend.encoder.encoder_file import ENCODER_INFO, ENCODER_WEIGHTS, load_encoder, save_encoder
from backend.encoder.network import EncoderArchitecture, ImageEncoder
from backend.formats.errors import BadInput

DEFAULT_MODEL = Path(__file__).parents[3] / "backend/models/default"


@pytest.fixture(params=["linear", "mlp"])
def model(tmp_path, request):
    """A model folder with a saved seeded encoder of each landmark code (mlp: the default until
    2026-12-04, so users' personal models of before are such)."""
    folder = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL, folder, ignore=shutil.ignore_patterns("encoder.*"))
    torch.manual_seed(1)
    encoder = ImageEncoder(EncoderArchitecture(crop_size=64, width=16, landmark_code=request.param))
    encoder.code_mean.fill_(0.5)
    save_encoder(folder, encoder, {"metrics": {"clean_vertex_mm": 1.0}})
    return folder, encoder


def test_a_saved_encoder_loads_and_predicts_the_same(model):
    folder, encoder = model
    loaded, info = load_encoder(folder)
    crops, points, confidence = torch.rand(2, 3, 64, 64), torch.rand(2, 68, 2) * 64, torch.ones(2, 68)
    with torch.no_grad():
        a, b = encoder.eval()(crops, points, confidence), loaded(crops, points, confidence)
    assert info["metrics"] == {"clean_vertex_mm": 1.0}
    assert torch.allclose(a.z, b.z, atol=2e-2) and torch.allclose(a.rotation, b.rotation, atol=1e-2)


def test_a_model_without_an_encoder_says_how_to_train_one(tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(DEFAULT_MODEL, folder, ignore=shutil.ignore_patterns("encoder.*"))
    with pytest.raises(BadInput, match="train-encoder"):
        load_encoder(folder)


def test_an_encoder_of_other_dam_weights_is_refused(model):
    folder, _ = model
    info = json.loads((folder / ENCODER_INFO).read_text())
    info["dam_weights"] = "0" * 16
    (folder / ENCODER_INFO).write_text(json.dumps(info))
    with pytest.raises(BadInput, match="other DAM weights"):
        load_encoder(folder)


@pytest.mark.parametrize("content", [b"", b"\x80\x04K\x01.", b"not safetensors at all"])
def test_unreadable_weights_are_refused_naming_the_file(model, content):
    folder, _ = model
    (folder / ENCODER_WEIGHTS).write_bytes(content)  # empty, a pickle, junk
    with pytest.raises(BadInput, match=ENCODER_WEIGHTS):
        load_encoder(folder)


def test_a_linear_landmark_code_round_trips_and_an_older_file_reads_as_the_perceptron(model):
    folder, _ = model
    torch.manual_seed(2)
    linear = ImageEncoder(EncoderArchitecture(crop_size=64, width=16, landmark_code="linear")).eval()
    save_encoder(folder, linear, {})
    loaded, info = load_encoder(folder)
    assert info["architecture"]["landmark_code"] == "linear"
    points, confidence = torch.rand(2, 68, 2) * 64, torch.ones(2, 68)
    with torch.no_grad():
        assert torch.allclose(linear(None, points, confidence).z, loaded(None, points, confidence).z, atol=2e-2)
    # encoder.json written before the option: no landmark_code, the perceptron's weights.
    save_encoder(folder, ImageEncoder(EncoderArchitecture(crop_size=64, width=16, landmark_code="mlp")), {})
    info = json.loads((folder / ENCODER_INFO).read_text())
    del info["architecture"]["landmark_code"]
    (folder / ENCODER_INFO).write_text(json.dumps(info))
    assert load_encoder(folder)[0].config.landmark_code == "mlp"
    info["architecture"]["landmark_code"] = "cubic"
    (folder / ENCODER_INFO).write_text(json.dumps(info))
    with pytest.raises(BadInput, match="cubic"):
        load_encoder(folder)
