"""The identity basis: MakeHuman's modifiers over the default head, applied as MakeHuman applies
them, cached and rebuilt when the cache is damaged."""

from __future__ import annotations

import numpy as np
import pytest

from backend.identity import identity_basis as module
from backend.identity.identity_basis import GROUPS, MACRO_COMPONENTS, identity_basis


@pytest.fixture(scope="module")
def basis():
    return identity_basis()


def test_the_basis_covers_the_head_groups_and_the_macro_directions(basis, default_head):
    assert set(basis.group) == set(GROUPS) | {"macro"}
    assert basis.group.count("macro") == MACRO_COMPONENTS
    assert basis.incr.shape == (basis.size, default_head.num_vertices, 3)
    # Every modifier moves the head (a target outside the cut would be all zeros).
    assert (np.abs(basis.incr).max(axis=(1, 2)) > 1e-4).all()


def test_coefficients_move_the_head_as_makehuman_does(basis):
    two_sided = basis.names.index("nose-scale-horiz-decr-incr")
    one_sided = basis.names.index("head-oval")
    assert basis.lower[one_sided] == 0 and basis.lower[two_sided] == -1
    c = np.zeros(basis.size)
    assert not basis.deltas(c).any()
    c[two_sided] = 0.5
    np.testing.assert_allclose(basis.deltas(c), 0.5 * basis.incr[two_sided], atol=1e-7)
    c[two_sided] = -0.5
    np.testing.assert_allclose(basis.deltas(c), 0.5 * basis.decr[two_sided], atol=1e-7)
    assert not np.allclose(basis.incr[two_sided], -basis.decr[two_sided])  # two targets, not one
    c[:] = 0
    c[one_sided] = -1.0  # below its bound: a one-sided modifier cannot be applied negatively
    assert not basis.deltas(c).any()


def test_a_damaged_cache_entry_is_rebuilt(basis, monkeypatch, tmp_path):
    monkeypatch.setenv("FACEADAPT_CACHE", str(tmp_path))
    path = tmp_path / "identity" / f"basis-{module.basis_version()}.npz"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an npz")
    with pytest.warns(RuntimeWarning, match="could not be loaded"):
        rebuilt = identity_basis()
    np.testing.assert_array_equal(rebuilt.incr, basis.incr)
    assert identity_basis().names == basis.names  # now read from the rewritten entry
