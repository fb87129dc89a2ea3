import numpy as np
import pytest

from backend.trackers.untracked_frames import frame_ranges, hold_untracked


def test_hold_untracked_copies_the_nearest_tracked_frame():
    values = np.arange(6.0)
    tracked = np.array([False, True, False, False, True, False])
    assert hold_untracked(values, tracked).tolist() == [1, 1, 1, 4, 4, 4]


def test_hold_untracked_holds_whole_rows():
    values = np.arange(12.0).reshape(4, 3)
    held = hold_untracked(values, np.array([True, False, False, True]))
    np.testing.assert_array_equal(held, values[[0, 0, 3, 3]])


def test_hold_untracked_without_a_tracked_frame_is_refused():
    with pytest.raises(ValueError, match="no tracked frame"):
        hold_untracked(np.arange(3.0), np.zeros(3, bool))


def test_frame_ranges():
    assert frame_ranges([1, 2, 3, 7]) == "1-3, 7"
    assert frame_ranges([4]) == "4"
    assert frame_ranges([0, 2, 3]) == "0, 2-3"


def test_hold_untracked_matches_the_nearest_frame_everywhere_and_stays_linear():
    rng = np.random.default_rng(0)
    for _ in range(50):
        tracked = rng.random(40) < rng.uniform(0.05, 0.9)
        tracked[rng.integers(40)] = True
        at = np.flatnonzero(tracked)
        # The earlier tracked frame wins a tie (argmin takes the first).
        expected = at[np.abs(np.arange(40)[:, None] - at[None]).argmin(1)]
        assert hold_untracked(np.arange(40), tracked).tolist() == expected.tolist()
    # A 200,000-frame clip with one tracked frame in ten (a frames x tracked table would be 32 GB).
    tracked = np.zeros(200_000, bool)
    tracked[::10] = True
    held = hold_untracked(np.arange(200_000), tracked)
    assert held[14] == 10 and held[15] == 10 and held[16] == 20 and held[-1] == 199_990
