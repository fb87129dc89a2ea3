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


def test_an_event_is_one_line_whatever_its_message():
    line = protocol.event_line("error", kind="bad_input", message="line one\nline two \u00e9")
    assert "\n" not in line
    assert protocol.parse_event_line(line + "\n")["message"] == "line one\nline two \u00e9"


def test_json_that_is_not_an_event_object_is_ignored():
    assert protocol.parse_event_line('["event", "progress"]') is None
    assert protocol.parse_event_line('{"stage": "fit"}') is None
    assert protocol.parse_event_line("") is None
    assert protocol.parse_event_line('  {"event": "log", "message": "x"}  ') == {"event": "log",
                                                                                 "message": "x"}


def test_each_error_class_carries_its_kind_and_exit_code():
    from backend.formats.errors import BackendError, BadInput, Cancelled, NoFace

    for error, kind in ((BackendError, "internal"), (BadInput, "bad_input"), (NoFace, "no_face"),
                        (Cancelled, "cancelled")):
        raised = error("why")
        assert raised.kind == kind and raised.message == "why"
        assert raised.exit_code == protocol.EXIT_CODES[kind]
    assert Cancelled("stop").exit_code == 130  # 128 + SIGINT, as a shell reports an interrupted command
