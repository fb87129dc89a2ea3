import numpy as np
import pytest

from backend.formats.errors import BadInput
from backend.formats.head_file import load_head, save_head
from backend.heads.arkit import ARKIT_NAMES, arkit_channel, to_arkit_spelling


def test_default_head_follows_the_conventions(default_head):
    head = default_head
    head.validate("default head")
    assert head.blendshape_names == sorted(ARKIT_NAMES)
    assert head.albedo is not None and head.albedo.shape[2] == 3
    v = head.vertices
    # Metres, +Z up, face toward -Y, origin at the neck base: a head is ~0.25 m tall above it.
    assert 0.2 < v[:, 2].max() < 0.32
    nose_tip = head.vertices[head.landmark_vertex[30]]
    back = v[:, 1].max()
    assert nose_tip[1] < v[:, 1].mean() < back
    # The model's left eye (landmark 45, outer corner) is at +X.
    assert head.vertices[head.landmark_vertex[45], 0] > 0 > head.vertices[head.landmark_vertex[36], 0]
    # jawOpen moves the chin down.
    jaw = head.blendshapes[head.blendshape_names.index("jawOpen")]
    assert jaw[head.landmark_vertex[8], 2] < -0.005
    assert head.landmark_mask[8] and not head.landmark_mask[0]
    assert head.face_region.sum() > 1000


def test_landmarks_are_on_the_face_in_anatomical_order(default_head):
    lm = default_head.vertices[default_head.landmark_vertex]
    assert lm[27:31, 2].tolist() == sorted(lm[27:31, 2].tolist(), reverse=True)  # nose bridge down
    assert lm[19, 2] > lm[37, 2] > lm[30, 2] > lm[62, 2] > lm[8, 2]  # brow > eye > nose > mouth > chin


def test_head_file_round_trip(default_head, tmp_path):
    path = tmp_path / "head.npz"
    save_head(default_head, path)
    loaded = load_head(path)
    assert loaded.topology_hash == default_head.topology_hash
    np.testing.assert_array_equal(loaded.blendshapes, default_head.blendshapes)
    assert loaded.blendshape_names == default_head.blendshape_names


def test_corrupt_and_incomplete_head_files_are_refused(default_head_file, tmp_path):
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(default_head_file.read_bytes()[:5000])
    with pytest.raises(BadInput, match=r"truncated\.npz"):
        load_head(truncated)
    with pytest.raises(BadInput, match="does not exist"):
        load_head(tmp_path / "missing.npz")
    incomplete = tmp_path / "incomplete.npz"
    np.savez(incomplete, vertices=np.zeros((3, 3)))
    with pytest.raises(BadInput, match="lacks field"):
        load_head(incomplete)


def test_wrong_blendshape_vertex_count_is_refused(default_head, tmp_path):
    from dataclasses import replace

    broken = replace(default_head, blendshapes=default_head.blendshapes[:, :10])
    with pytest.raises(BadInput, match="blendshapes"):
        broken.validate("broken")


def test_arkit_spelling():
    assert to_arkit_spelling("eyeBlink_L") == "eyeBlinkLeft"
    assert to_arkit_spelling("browInnerUp_R") == "browInnerUp_R"  # split: stays a channel
    assert arkit_channel("browInnerUp_R") == "browInnerUp"
    assert arkit_channel("cheekRaiser_L") is None


@pytest.mark.data
def test_ict_head_and_landmark_embedding_against_its_own_ids(data_dir):
    from backend.heads.ict_head import ict_head_with_albedo, load_ict_head
    from backend.heads.landmark_embedding import embed_landmarks

    head = ict_head_with_albedo()
    _, ids = load_ict_head(data_dir / "heads/ict-facekit/ict_facekit.npz")
    assert head.num_vertices == 26719
    assert "eyeBlinkLeft" in head.blendshape_names and "browInnerUp_L" in head.blendshape_names
    embedding = embed_landmarks(head)
    dist_mm = np.linalg.norm(head.vertices[embedding.landmark_vertex] - head.vertices[ids], axis=1) * 1000
    # Eyes, nose and mouth land within a few millimetres (docs/landmarks.md has the figures;
    # brows sit about 1 cm lower than ICT's convention, the jaw contour is masked).
    assert dist_mm[27:].mean() < 5.0
    assert np.median(dist_mm[27:]) < 4.0


@pytest.mark.data
def test_ict_skin_owns_its_whole_texture(data_dir):
    """The inner meshes share the skin's UV square upstream; every texel must stay the skin's,
    or unwrapped footage and lab textures lose half the face."""
    import torch

    from backend.heads.ict_head import SKIN_VERTICES, ict_head_with_albedo
    from backend.render.texture import rasterize_uv

    head = ict_head_with_albedo()
    skin = (head.faces < SKIN_VERTICES).all(1)
    fragments, _ = rasterize_uv(torch.as_tensor(head.uv), torch.as_tensor(head.uv_faces), 256)
    owner = fragments.triangle[0].numpy()
    assert (owner >= 0).mean() > 0.5
    assert skin[owner[owner >= 0]].all()


def test_truncated_cached_default_head_is_rebuilt(default_head, default_head_file, tmp_path,
                                                 monkeypatch):
    from backend.heads.default_head import default_head as cached_default_head
    from backend.heads.default_head import head_id

    monkeypatch.setenv("FACEADAPT_CACHE", str(tmp_path))
    cached = tmp_path / "heads" / f"{head_id('default')}.npz"
    cached.parent.mkdir()
    cached.write_bytes(default_head_file.read_bytes()[:5000])
    with pytest.warns(RuntimeWarning, match=str(cached)):
        head = cached_default_head()
    np.testing.assert_array_equal(head.vertices, default_head.vertices)
    np.testing.assert_array_equal(load_head(cached).vertices, default_head.vertices)


def test_unwritable_cache_builds_the_default_head_in_memory(default_head, tmp_path, monkeypatch):
    from backend.heads.default_head import default_head as cached_default_head

    # A file where the cache folder should be fails every write as a read-only folder does
    # (root bypasses permission bits, so chmod cannot show it here).
    cache = tmp_path / "cache"
    cache.write_bytes(b"")
    monkeypatch.setenv("FACEADAPT_CACHE", str(cache))
    with pytest.warns(RuntimeWarning, match="the default head is not cached"):
        head = cached_default_head()
    np.testing.assert_array_equal(head.vertices, default_head.vertices)
    assert cache.read_bytes() == b""
