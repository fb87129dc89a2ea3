"""Install Backend's plain-Python logic (blender_addon/backend_install.py): the runtime lock
reader, which Python makes the environment, the steps, and running them (progress, log,
failure, cancel, the previous environment kept). The install itself, downloads included, is
`make check-install` (tests/blender_addon/install_backend_check.py)."""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path

import pytest

from faceadapt.blender_addon import backend_install, backend_python
from faceadapt.blender_addon.backend_install import (
    NO_PYTHON_ADVICE,
    Candidate,
    Choice,
    Installation,
    InstallFailed,
    InstallRefused,
    Interpreter,
    Step,
)

pytestmark = pytest.mark.skipif(os.name == "nt", reason="fake interpreters are shell scripts")


def fake_python(path: Path, body: str) -> Path:
    """An executable standing in for an interpreter: it ignores its arguments and runs body."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def answering(path: Path, version: tuple[int, int], venv: bool = True) -> Path:
    """A fake interpreter answering the probe as Python `version` installed at `path`."""
    answer = json.dumps({"executable": str(path), "version": list(version), "venv": venv})
    return fake_python(path, f"echo '{answer}'")


def python_step(stage: str, code: str, packages: int = 0) -> Step:
    return Step(stage, (sys.executable, "-c", code), packages=packages)


CHECK_ANSWER = python_step("checking", "import json; print(json.dumps({'torch': '2.13.0', 'cuda': False}))")


# --- the lock -----------------------------------------------------------------------------

def test_read_lock_normalises_names_and_skips_comments(tmp_path: Path):
    lock = tmp_path / "r.lock"
    lock.write_text("# made by hand\n\nPyYAML==6.0.3\ntyping_extensions==4.16.0  # why\n")
    assert backend_install.read_lock(lock) == {"pyyaml": "6.0.3", "typing-extensions": "4.16.0"}


def test_read_lock_refuses_a_line_without_a_pin_naming_file_and_line(tmp_path: Path):
    lock = tmp_path / "r.lock"
    lock.write_text("numpy==1.26.4\ntorch>=2\n")
    with pytest.raises(ValueError, match=r"r\.lock line 2: 'torch>=2' is not name==version"):
        backend_install.read_lock(lock)


# --- probing an interpreter ---------------------------------------------------------------

def test_probe_reads_this_interpreter():
    result = backend_install.probe(Candidate("this test's Python", (sys.executable,)))
    version = sys.version_info[:2]
    if version in backend_install.SUPPORTED_VERSIONS:
        assert result == Interpreter(Path(sys.executable), version, "this test's Python")
    else:
        assert isinstance(result, str) and f"is Python {version[0]}.{version[1]}" in result


@pytest.mark.parametrize(("body", "words"), [
    ("echo '{\"executable\": \"/x/python3.13\", \"version\": [3, 13], \"venv\": true}'",
     "is Python 3.13; the backend's packages need Python 3.11 or 3.12"),
    ("echo '{\"executable\": \"/usr/bin/python3.11\", \"version\": [3, 11], \"venv\": false}'",
     "install the python3.11-venv package"),
    ("echo \"pyenv: python3.11: command not found\" >&2; exit 127",
     "fails (exit 127): pyenv: python3.11: command not found"),
    ("echo 'Python 3.11.7'", "answered 'Python 3.11.7'"),
])
def test_probe_says_why_an_interpreter_cannot_make_the_environment(tmp_path: Path, body: str, words: str):
    python = fake_python(tmp_path / "python", body)
    result = backend_install.probe(Candidate("a test", (str(python),)))
    assert isinstance(result, str) and words in result


def test_probe_of_a_missing_file():
    result = backend_install.probe(Candidate("a test", ("/nonexistent/python3.11",)))
    assert isinstance(result, str) and result.startswith("cannot be run")


def test_probe_resolves_a_shim_to_the_interpreter_it_runs(tmp_path: Path):
    real = tmp_path / "versions" / "3.12.1" / "bin" / "python3.12"
    shim = answering(tmp_path / "shims" / "python3.12", (3, 12))
    shim.write_text(shim.read_text().replace(str(shim), str(real)))
    assert backend_install.probe(Candidate("a shim", (str(shim),))) == Interpreter(real, (3, 12), "a shim")


# --- where Pythons are looked for ---------------------------------------------------------

def under(candidates: list[Candidate], root: Path) -> list[tuple[str, ...]]:
    """The candidates' commands with paths under `root` shown relative to it (the machine's
    own /usr/bin and so on are left out)."""
    return [tuple(os.path.relpath(part, root) if part.startswith(str(root)) else part
                  for part in c.command) for c in candidates if c.command[0].startswith(str(root))]


def test_posix_candidates_by_version_then_path_pyenv_and_install_folders(tmp_path: Path):
    for relative in ("bin1/python3.11", "bin2/python3.11", "bin2/python3.12",
                     "pyenv/versions/3.11.2/bin/python3.11", "pyenv/versions/3.11.10/bin/python3.11",
                     "pyenv/versions/3.11-dev/bin/python3.11", "pyenv/versions/3.12.1/bin/python3.12",
                     "home/.local/bin/python3.12"):
        fake_python(tmp_path / relative, "exit 0")
    env = {"PATH": os.pathsep.join([str(tmp_path / "bin1"), str(tmp_path / "empty"), str(tmp_path / "bin2")]),
           "PYENV_ROOT": str(tmp_path / "pyenv")}
    found = backend_install.installed_candidates(env, "linux", tmp_path / "home")
    assert under(found, tmp_path) == [
        ("bin1/python3.11",), ("bin2/python3.11",),
        ("pyenv/versions/3.11.10/bin/python3.11",), ("pyenv/versions/3.11.2/bin/python3.11",),
        ("bin2/python3.12",), ("pyenv/versions/3.12.1/bin/python3.12",),
        ("home/.local/bin/python3.12",)]
    assert [c.found for c in found if c.command[0].startswith(str(tmp_path))][:3] == [
        "python3.11 on PATH", "python3.11 on PATH", "pyenv"]


def test_windows_candidates_store_alias_launcher_and_installers(tmp_path: Path):
    for relative in ("local/Programs/Python/Python311/python.exe", "local/Programs/Python/Launcher/py.exe",
                     "programs/Python312/python.exe", "apps/python3.12.exe",
                     "home/.pyenv/pyenv-win/versions/3.11.9/python.exe"):
        fake_python(tmp_path / relative, "exit 0")
    env = {"PATH": str(tmp_path / "apps"), "LOCALAPPDATA": str(tmp_path / "local"),
           "ProgramFiles": str(tmp_path / "programs"), "SystemRoot": str(tmp_path / "windows")}
    found = backend_install.installed_candidates(env, "win32", tmp_path / "home")
    launcher = "local/Programs/Python/Launcher/py.exe"
    assert under(found, tmp_path) == [
        (launcher, "-3.11"), ("local/Programs/Python/Python311/python.exe",),
        ("home/.pyenv/pyenv-win/versions/3.11.9/python.exe",),
        ("apps/python3.12.exe",), (launcher, "-3.12"), ("programs/Python312/python.exe",)]


# --- choosing ----------------------------------------------------------------------------

def test_blender_3_13_passes_over_to_a_located_3_11(tmp_path: Path):
    own = answering(tmp_path / "blender" / "python3.13", (3, 13))
    shim = fake_python(tmp_path / "shims" / "python3.11", "echo 'pyenv: version not installed' >&2; exit 1")
    good = answering(tmp_path / "pyenv" / "python3.11", (3, 11))
    choice = backend_install.choose_interpreter(
        "", own, [Candidate("python3.11 on PATH", (str(shim),)), Candidate("pyenv", (str(good),))])
    assert choice.interpreter == Interpreter(good, (3, 11), "pyenv")
    assert len(choice.passed_over) == 2
    assert choice.passed_over[0].startswith("Blender's own Python")
    assert "is Python 3.13" in choice.passed_over[0]
    assert "pyenv: version not installed" in choice.passed_over[1]


def test_blender_3_11_uses_its_own_python(tmp_path: Path):
    own = answering(tmp_path / "blender" / "python3.11", (3, 11))
    choice = backend_install.choose_interpreter("", own, [])
    assert choice == Choice(Interpreter(own, (3, 11), "Blender's own Python"), [])


def test_no_usable_python_leaves_the_choice_to_uv(tmp_path: Path):
    own = answering(tmp_path / "python3.13", (3, 13))
    assert backend_install.choose_interpreter("", own, []).interpreter is None


def test_a_named_python_that_cannot_be_used_is_refused_not_replaced(tmp_path: Path):
    own = answering(tmp_path / "blender" / "python3.11", (3, 11))
    named = answering(tmp_path / "python3.10", (3, 10))
    with pytest.raises(InstallRefused, match="clear the field") as refused:
        backend_install.choose_interpreter(str(named), own, [])
    assert str(named) in str(refused.value) and "is Python 3.10" in str(refused.value)


# --- the steps ---------------------------------------------------------------------------

LOCK_TEXT = "numpy==1.26.4\ntorch==2.13.0\nmediapipe==0.10.21\n"


def test_plan_with_a_located_python(tmp_path: Path):
    lock = tmp_path / "requirements-backend.lock"
    lock.write_text(LOCK_TEXT)
    venv = tmp_path / "user" / "venv"
    python = str(backend_python.venv_python(venv))
    interpreter = Interpreter(Path("/py/python3.11"), (3, 11), "pyenv")
    steps = backend_install.plan(Choice(interpreter), Path("/blender/python3.13"), venv, lock,
                                 backend_install.read_lock(lock))
    assert [s.command[:4] for s in steps] == [
        ("/py/python3.11", "-m", "venv", str(venv)),
        (python, "-m", "pip", "install"), (python, "-m", "pip", "install"),
        (python, "-c", backend_python.CHECK_CODE)]
    assert steps[0].stage == "creating the environment with Python 3.11 (pyenv)"
    assert steps[1].command[-3:] == ("--no-deps", "-r", str(lock)) and steps[1].packages == 3
    assert steps[2].command[-3:] == ("torch==2.13.0", "--constraint", str(lock))


def test_plan_without_a_python_gets_one_with_uv(tmp_path: Path):
    lock = tmp_path / "requirements-backend.lock"
    lock.write_text(LOCK_TEXT)
    user = tmp_path / "user"
    own = "/blender/python3.13"
    steps = backend_install.plan(Choice(None, ["..."]), Path(own), user / "venv", lock,
                                 backend_install.read_lock(lock))
    uv_env = {"PYTHONPATH": str(user / "uv"), "UV_PYTHON_INSTALL_DIR": str(user / "python")}
    assert steps[0].command == (own, "-m", "pip", "install", "--progress-bar", "off", "--upgrade",
                                "--target", str(user / "uv"), backend_install.UV_REQUIREMENT)
    assert steps[1].command == (own, "-m", "uv", "python", "install", "3.11") and steps[1].env == uv_env
    assert steps[2].command == (own, "-m", "uv", "venv", "--seed", "--managed-python", "--python", "3.11",
                                str(user / "venv")) and steps[2].env == uv_env
    assert all(s.advice == NO_PYTHON_ADVICE for s in steps[:3])
    assert steps[3].stage == "installing packages" and len(steps) == 6


@pytest.mark.parametrize(("text", "words"), [
    (None, "runtime lock .* is missing: reinstall FaceAdapt"),
    ("numpy\n", "line 1: 'numpy' is not name==version; reinstall FaceAdapt"),
    ("numpy==1.26.4\n", "pins no torch"),
])
def test_prepare_refuses_a_missing_or_broken_lock(tmp_path: Path, text: str | None, words: str):
    lock = tmp_path / "requirements-backend.lock"
    if text is not None:
        lock.write_text(text)
    with pytest.raises(InstallRefused, match=words):
        backend_install.prepare("", Path(sys.executable), tmp_path / "user", lock)


def test_prepare_on_this_machine_plans_every_step(tmp_path: Path):
    lock = tmp_path / "requirements-backend.lock"
    lock.write_text(LOCK_TEXT)
    installation = backend_install.prepare("", Path(sys.executable), tmp_path / "user", lock)
    assert installation.steps[-1].command[-1] == backend_python.CHECK_CODE
    assert installation.venv == tmp_path / "user" / "venv"
    assert not installation.started and not installation.venv.exists()


# --- running the steps -------------------------------------------------------------------

def make_venv_step(venv: Path) -> Step:
    return python_step("creating", f"import pathlib; p = pathlib.Path({str(venv)!r}); "
                                   "p.mkdir(); (p / 'made').write_text('new')")


def with_previous(venv: Path) -> None:
    venv.mkdir(parents=True)
    (venv / "made").write_text("old")


def test_installation_counts_packages_logs_and_replaces_the_previous_environment(tmp_path: Path):
    venv = tmp_path / "venv"
    with_previous(venv)
    pip_like = python_step("installing packages", "print('Collecting numpy==1.26.4 (from -r lock (line 1))'); "
                           "print('Requirement already satisfied: torch==2.13.0 in x'); "
                           "print('Installing collected packages: numpy')", packages=2)
    installation = Installation([make_venv_step(venv), pip_like, CHECK_ANSWER], venv, tmp_path / "log.txt",
                                ["python3.11 on PATH (/x) fails"])
    seen = []
    installation.wait(on_progress=lambda p: seen.append(p.describe()), interval=0.01)
    assert installation.outcome() == "torch 2.13.0 on CPU"
    assert (venv / "made").read_text() == "new"
    assert not installation.previous.exists()
    log = (tmp_path / "log.txt").read_text()
    assert "passed over: python3.11 on PATH (/x) fails" in log and "Collecting numpy" in log
    assert "installed: torch 2.13.0 on CPU" in log
    assert installation.progress.step == 3


def test_package_progress_follows_pip_lines():
    installation = Installation([], Path("venv"), Path("log"))
    installation.progress = backend_install.InstallProgress("installing packages", 2, 4, 0, 2)
    installation._count_package("Collecting numpy==1.26.4 (from -r lock (line 1))")
    assert installation.progress.describe() == "step 2/4: installing packages 1/2 (numpy==1.26.4)"
    assert installation.progress.fraction == pytest.approx(1.5 / 4)
    installation._count_package("  Downloading numpy-1.26.4-cp311-cp311-manylinux.whl (18.2 MB)")
    installation._count_package("Processing /opt/pypi/files/torch-2.13.0-cp311-cp311-linux_x86_64.whl")
    assert installation.progress.describe() == ("step 2/4: installing packages 2/2 "
                                                 "(torch-2.13.0-cp311-cp311-linux_x86_64.whl)")
    installation._count_package("Requirement already satisfied: torch==2.13.0 in /v")
    installation._count_package("Installing collected packages: numpy")
    assert installation.progress.describe() == "step 2/4: installing packages 2/2 (unpacking)"


def test_a_failed_step_names_itself_quotes_pip_and_puts_the_previous_environment_back(tmp_path: Path):
    venv = tmp_path / "venv"
    with_previous(venv)
    failing = python_step("installing packages", "import sys; sys.stdout.buffer.write(b'\\xff\\xfe junk\\n'); "
                          "print('ERROR: No matching distribution found for mediapipe==0.10.21'); sys.exit(3)")
    installation = Installation([make_venv_step(venv), failing, CHECK_ANSWER], venv, tmp_path / "log.txt")
    installation.wait(interval=0.01)
    with pytest.raises(InstallFailed) as failed:
        installation.outcome()
    message = str(failed.value)
    assert "failed installing packages (exit 3)" in message
    assert "No matching distribution found for mediapipe==0.10.21" in message
    assert f"Full log: {tmp_path / 'log.txt'}" in message and f"previous environment stays in {venv}" in message
    assert not failed.value.cancelled
    assert (venv / "made").read_text() == "old" and not installation.previous.exists()


def test_a_check_that_fails_after_the_install_is_a_failure(tmp_path: Path):
    venv = tmp_path / "venv"
    broken = python_step("checking", "print('banner only')")
    installation = Installation([make_venv_step(venv), broken], venv, tmp_path / "log.txt")
    installation.wait(interval=0.01)
    with pytest.raises(InstallFailed, match=r"answered the check with 'banner only'.*Nothing was kept"):
        installation.outcome()
    assert not venv.exists()


def test_a_step_that_cannot_start_is_reported_with_its_advice(tmp_path: Path):
    step = Step("installing uv", ("/nonexistent/blender-python", "-m", "pip"), advice=NO_PYTHON_ADVICE)
    installation = Installation([step], tmp_path / "venv", tmp_path / "log.txt")
    installation.wait(interval=0.01)
    with pytest.raises(InstallFailed, match="cannot run /nonexistent/blender-python") as failed:
        installation.outcome()
    assert str(failed.value).endswith(NO_PYTHON_ADVICE)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.is_file() and "State:\tZ" in status.read_text())


def test_cancel_stops_the_whole_step_even_when_it_ignores_sigterm(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(backend_install, "STOP_GRACE_S", 0.5)
    venv = tmp_path / "venv"
    with_previous(venv)
    pid_file = tmp_path / "grandchild.pid"
    stubborn = python_step("installing packages", (
        "import pathlib, signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        f"pathlib.Path({str(pid_file)!r}).write_text(str(child.pid)); print('Collecting x', flush=True); "
        "time.sleep(60)"), packages=5)
    installation = Installation([make_venv_step(venv), stubborn, CHECK_ANSWER], venv, tmp_path / "log.txt")
    started = time.monotonic()
    installation.wait(should_cancel=pid_file.is_file, interval=0.05)
    assert time.monotonic() - started < 20
    with pytest.raises(InstallFailed, match="cancelled during installing packages") as failed:
        installation.outcome()
    assert failed.value.cancelled
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(grandchild)
    assert (venv / "made").read_text() == "old" and not installation.previous.exists()


def test_an_interrupted_earlier_install_gets_its_environment_back_first(tmp_path: Path):
    venv = tmp_path / "venv"
    previous = tmp_path / "venv.previous"
    with_previous(previous)
    venv.mkdir()
    (venv / "half").write_text("written by an install Blender quit during")
    failing = python_step("installing packages", "raise SystemExit(1)")
    installation = Installation([make_venv_step(venv), failing], venv, tmp_path / "log.txt")
    installation.wait(interval=0.01)
    with pytest.raises(InstallFailed):
        installation.outcome()
    assert sorted(p.name for p in venv.iterdir()) == ["made"] and (venv / "made").read_text() == "old"
    assert not previous.exists()
