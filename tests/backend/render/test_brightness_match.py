import torch

from backend.render.brightness_match import brightness_matched


def test_the_fill_is_as_bright_per_channel_as_the_seen_texels():
    reference = torch.tensor([[0.2, 0.4, 0.3, 0.1], [0.5, 0.5, 0.5, 0.5], [0.1, 0.1, 0.6, 0.9]])
    seen = torch.tensor([True, True, False, False])
    texels = reference * torch.tensor([2.0, 0.5, 3.0])[:, None]  # another light's colour
    matched = brightness_matched(reference, texels, seen)
    assert torch.allclose(matched[:, seen].mean(1), texels[:, seen].mean(1))
    # Unseen texels keep the reference's pattern under the seen texels' gain, clipped to [0, 1].
    assert torch.allclose(matched[:, ~seen], torch.tensor([[0.6, 0.2], [0.25, 0.25], [1.0, 1.0]]))


def test_nothing_seen_leaves_the_reference():
    reference, nothing = torch.rand(3, 5), torch.zeros(5, dtype=torch.bool)
    assert torch.equal(brightness_matched(reference, torch.zeros(3, 5), nothing), reference)
