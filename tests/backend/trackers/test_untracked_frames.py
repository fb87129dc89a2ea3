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
