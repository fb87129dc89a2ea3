import pytest
import torch

from backend.encoder.crop import CROP_POINTS
from backend.encoder.network import EncoderArchitecture, ImageEncoder


@pytest.fixture(params=["mlp", "linear"])
def encoder(request):
    torch.manual_seed(0)
    return ImageEncoder(EncoderArchitecture(crop_size=64, width=8, landmark_width=32,
                                            landmark_code=request.param)).eval()


def _inputs(batch=3):
    generator = torch.Generator().manual_seed(1)
    crops = torch.rand(batch, 3, 64, 64, generator=generator)
    return crops, torch.rand(batch, 68, 2, generator=generator) * 63, torch.ones(batch, 68)


def test_the_landmarks_reach_the_code_and_the_pose(encoder):
    crops, points, confidence = _inputs()
    moved = points.clone()
    moved[:, 48:68] += 5  # the mouth opens
    with torch.no_grad():
        a, b = encoder(crops, points, confidence), encoder(crops, moved, confidence)
    assert a.z.shape == (3, 64) and a.rotation.shape == (3, 3, 3)
    assert (a.z - b.z).abs().max() > 1e-4 and (a.rotation - b.rotation).abs().max() > 1e-6


def test_an_unconfident_point_is_not_used_and_the_jaw_contour_never_is(encoder):
    crops, points, confidence = _inputs()
    hidden = confidence.clone()
    hidden[:, CROP_POINTS[10]] = 0.05
    moved = points.clone()
    moved[:, CROP_POINTS[10]] += 30  # where a missing point is claimed to be does not matter
    moved[:, :8] += 30  # nor the sliding jaw contour (not a crop point)
    with torch.no_grad():
        a, b = encoder(crops, points, hidden), encoder(crops, moved, hidden)
        c = encoder(crops, points, confidence)
    assert torch.equal(a.z, b.z)
    assert (a.z - c.z).abs().max() > 1e-4  # a point going missing is seen


def test_each_frame_is_encoded_on_its_own(encoder):
    crops, points, confidence = _inputs()
    with torch.no_grad():
        whole = encoder(crops, points, confidence).z
        first = encoder(crops[:1], points[:1], confidence[:1]).z
    assert torch.allclose(whole[:1], first, atol=1e-5)


def test_the_image_branch_starts_silent_so_it_joins_a_fitted_landmark_branch(encoder):
    crops, points, confidence = _inputs()
    with torch.no_grad():
        with_image = encoder(crops, points, confidence)
        landmarks_alone = encoder(None, points, confidence)
    assert torch.equal(with_image.z, landmarks_alone.z)


def test_a_linear_landmark_code_is_affine_in_the_points():
    torch.manual_seed(0)
    encoder = ImageEncoder(EncoderArchitecture(crop_size=64, width=8, landmark_width=32,
                                               landmark_code="linear")).eval()
    crops, points, confidence = _inputs(1)
    moved = points.clone()
    moved[:, 48:68] += 6
    halfway = (points + moved) / 2
    with torch.no_grad():
        a, b, c = (encoder(crops, p, confidence) for p in (points, moved, halfway))
    assert torch.allclose(c.z, (a.z + b.z) / 2, atol=1e-5)
    assert (a.z - b.z).abs().max() > 1e-3
