import json

import pytest

from backend.formats import protocol


def test_event_line_round_trip():
    line = protocol.event_line("progress", stage="fit", done=3, total=10, eta_s=1.5)
    assert json.loads(line)["event"] == "progress"
    assert protocol.parse_event_line(line) == {"event": "progress", "stage": "fit", "done": 3,
                                               "total": 10, "eta_s": 1.5}


def test_non_event_lines_are_ignored():
    assert protocol.parse_event_line("INFO: Created TensorFlow Lite delegate") is None
    assert protocol.parse_event_line('{"event": "nonsense"}') is None
    assert protocol.parse_event_line("{broken") is None


def test_unknown_event_kind_is_refused():
    with pytest.raises(ValueError):
        protocol.event_line("done")


def test_every_error_kind_has_a_non_zero_exit_code():
    assert set(protocol.EXIT_CODES) == set(protocol.ERROR_KINDS)
    assert all(code != 0 for code in protocol.EXIT_CODES.values())
