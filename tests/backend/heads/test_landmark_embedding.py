"""The inner lips of the embedded landmarks: upper and lower on their own lips (issue #12)."""

from dataclasses import replace

import numpy as np
import pytest

UPPER, LOWER = [61, 62, 63], [67, 66, 65]  # iBUG pairs facing each other across the mouth


def test_default_head_inner_lips_sit_on_their_own_lips(default_head):
    head = default_head
    vertex = head.landmark_vertex
    assert len(set(vertex[UPPER + LOWER].tolist())) == 6
    jaw = head.blendshapes[head.blendshape_names.index("jawOpen")]
    motion_mm = np.linalg.norm(jaw, axis=1) * 1000
    # jawOpen carries the lower lip with the jaw and leaves the upper lip nearly where it is.
    assert motion_mm[vertex[UPPER]].max() < 5 < 20 < motion_mm[vertex[LOWER]].min()
    closed = head.vertices
    half_open = head.vertices + 0.5 * jaw
    gap_closed = np.linalg.norm(closed[vertex[UPPER]] - closed[vertex[LOWER]], axis=1) * 1000
    gap_open = np.linalg.norm(half_open[vertex[UPPER]] - half_open[vertex[LOWER]], axis=1) * 1000
    assert gap_closed.max() < 5  # a closed mouth: the pairs nearly touch
    assert gap_open.min() > 5  # jawOpen 0.5 parts them
    # Upper above lower once open, each pair in the same column (within 5 mm across).
    assert (half_open[vertex[UPPER], 2] > half_open[vertex[LOWER], 2] + 0.005).all()
    assert np.abs(closed[vertex[UPPER], 0] - closed[vertex[LOWER], 0]).max() < 0.005


def test_head_without_jaw_open_keeps_the_closed_mouth_embedding_and_says_so(default_head):
    from backend.heads.landmark_embedding import embed_landmarks

    keep = [i for i, name in enumerate(default_head.blendshape_names) if name != "jawOpen"]
    head = replace(default_head, blendshapes=default_head.blendshapes[keep],
                   blendshape_names=[default_head.blendshape_names[i] for i in keep])
    with pytest.warns(RuntimeWarning, match="no jawOpen shape"):
        embedding = embed_landmarks(head)
    assert embedding.jaw_open_weight == 0 and "no jawOpen" in embedding.inner_lips_note
    # Everything but the inner lips is where the default head has it.
    others = np.setdiff1d(np.arange(68), UPPER + LOWER)
    np.testing.assert_array_equal(embedding.landmark_vertex[others],
                                  default_head.landmark_vertex[others])
    # On the closed neutral mouth upper and lower inner lips are detected on one seam.
    seam = head.vertices[embedding.landmark_vertex]
    assert np.linalg.norm(seam[UPPER] - seam[LOWER], axis=1).max() < 0.003
