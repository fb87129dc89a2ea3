"""What the add-on says about the backend interpreter before starting it."""

from __future__ import annotations

import sys
from pathlib import Path

from faceadapt.blender_addon.backend_python import interpreter_problem


def test_a_working_interpreter_has_no_problem():
    assert interpreter_problem(sys.executable, True, Path(sys.executable)) is None


def test_each_problem_says_what_to_do(tmp_path: Path):
    relative = interpreter_problem("//venv/bin/python", False, Path("venv/bin/python"))
    assert relative is not None and "not saved yet" in relative
    folder = interpreter_problem(str(tmp_path), True, tmp_path)
    assert folder is not None and "is a folder" in folder and str(tmp_path / "bin" / "python") in folder
    missing = interpreter_problem("", True, tmp_path / "python")
    assert missing is not None and "does not exist" in missing
    none = interpreter_problem("", True, None)
    assert none is not None and "Install Backend" in none


def test_a_relative_path_in_a_saved_file_is_resolved_by_blender():
    # Blender resolved '//' against the saved .blend: only the result is checked.
    assert interpreter_problem("//python", True, Path(sys.executable)) is None
