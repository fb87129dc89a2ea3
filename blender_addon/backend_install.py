"""Install Backend (plain Python, no bpy): which Python makes the backend's environment, the
commands that make it and fill it from the runtime lock, and running them with progress, a
log and cancel.

The locked packages need Python 3.11 or 3.12 (mediapipe 0.10.21 and numpy 1.26.4 have no
3.13 wheels, jax 0.7.1 needs 3.11), while Blender 5.3's own Python is 3.13. So the
environment is made with the first that works of: the Python named in FaceAdapt's
preferences, Blender's own, one installed on this computer (PATH, the py launcher, pyenv,
the installers' usual folders), and, when none is found, a standalone CPython that uv
(installed from PyPI) downloads. Everything is written under the extension's user folder:
no administrator rights are needed.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from . import backend_python
from .backend_client import EXTENSION_ROOT
from .process_group import STOP_GRACE_S, new_group_arguments, signal_group

RUNTIME_LOCK = EXTENSION_ROOT / "requirements-backend.lock"
# In order of preference: 3.11 is the version `make` installs and tests the locks with.
SUPPORTED_VERSIONS: tuple[tuple[int, int], ...] = ((3, 11), (3, 12))
UV_REQUIREMENT = "uv==0.13.9"
LOG_NAME = "install-backend.log"
PROBE_TIMEOUT_S = 30.0
TAIL_LINES = 8  # of a failed step's output, quoted in the message
# pip prints one of these per requirement it handles (Processing: a wheel on a local index).
_COLLECTING = ("Collecting ", "Processing ", "Requirement already satisfied: ")

# Run by a candidate interpreter: where it really is (shims and launchers resolve to it), its
# version, and whether it can make a venv with pip (Debian's python3.X has no ensurepip
# without the python3.X-venv package).
_PROBE = ("import importlib.util, json, sys; print(json.dumps({'executable': sys.executable, "
          "'version': list(sys.version_info[:2]), 'venv': all(importlib.util.find_spec(m) "
          "is not None for m in ('venv', 'ensurepip'))}))")

# Folders where installers put pythonX.Y, beside PATH (a GUI-started Blender may not see the
# PATH of a shell profile).
_POSIX_FOLDERS = {
    "darwin": ("/Library/Frameworks/Python.framework/Versions/{version}/bin", "/opt/homebrew/bin",
               "/usr/local/bin"),
    "linux": ("/usr/bin", "/usr/local/bin"),
}


def versions_text() -> str:
    return " or ".join(f"{major}.{minor}" for major, minor in SUPPORTED_VERSIONS)


NO_PYTHON_ADVICE = (
    f"Install Backend found no Python {versions_text()} on this computer and could not get one "
    f"with uv. Install Python {versions_text()} (python.org's installer for Windows or macOS "
    "needs no administrator rights when installed for you only; on Linux your package "
    "manager, pyenv or uv), then run Install Backend again, or name it in FaceAdapt's "
    "preferences (Python for Install Backend).")


class InstallRefused(Exception):
    """Install Backend cannot start; the message says what to do."""


class InstallFailed(Exception):
    """A step failed or the user cancelled; the previous environment, if any, is back."""

    def __init__(self, message: str, cancelled: bool = False) -> None:
        super().__init__(message)
        self.cancelled = cancelled


# --- the runtime lock ------------------------------------------------------------------------

def canonical_name(name: str) -> str:
    """A project name as pip compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, str]:
    """{canonical name: version} of a lock file of `name==version` lines (blank lines and
    `#` comments allowed). Raises ValueError naming the file and line otherwise."""
    pins: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        name, separator, version = text.partition("==")
        if not separator or not name.strip() or not version.strip():
            raise ValueError(f"{path} line {number}: {line!r} is not name==version")
        pins[canonical_name(name.strip())] = version.strip()
    return pins


# --- which Python makes the environment ------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    """A Python that may be installed: `command` runs it (a path, or a launcher and its
    arguments); `found` says where it came from, for messages."""

    found: str
    command: tuple[str, ...]


@dataclass(frozen=True)
class Interpreter:
    path: Path  # the executable itself, shims and launchers resolved
    version: tuple[int, int]
    found: str


def probe(candidate: Candidate, timeout: float = PROBE_TIMEOUT_S) -> Interpreter | str:
    """The interpreter `candidate` runs when it can make the backend's environment, else why
    not (a sentence completing "<candidate> ...")."""
    try:
        done = subprocess.run([*candidate.command, "-c", _PROBE], capture_output=True,
                              timeout=timeout, env=child_environment())
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot be run ({exc})"
    stdout = done.stdout.decode("utf-8", errors="replace").strip().splitlines()
    if done.returncode != 0 or not stdout:
        errors = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
        return f"fails (exit {done.returncode}): {errors[-1].strip() if errors else 'no output'}"
    answer = stdout[-1]
    try:
        info = json.loads(answer)
        version = (int(info["version"][0]), int(info["version"][1]))
        path, has_venv = Path(info["executable"]), bool(info["venv"])
    except (json.JSONDecodeError, TypeError, KeyError, IndexError, ValueError):
        return f"answered {answer!r}"
    text = f"{version[0]}.{version[1]}"
    if version not in SUPPORTED_VERSIONS:
        return f"is Python {text}; the backend's packages need Python {versions_text()}"
    if not has_venv:
        return (f"is Python {text} without the venv and ensurepip modules (on Debian or "
                f"Ubuntu: install the python{text}-venv package)")
    return Interpreter(path, version, candidate.found)


def installed_candidates(env: Mapping[str, str], platform: str = sys.platform,
                         home: Path | None = None) -> list[Candidate]:
    """Pythons of the supported versions that look installed here, in the order they are
    tried: by version (SUPPORTED_VERSIONS), then PATH, the py launcher, pyenv and the
    installers' usual folders. Lists existing files only; `probe` says which work."""
    home = Path.home() if home is None else home
    found: list[Candidate] = []
    for major, minor in SUPPORTED_VERSIONS:
        version = f"{major}.{minor}"
        if platform == "win32":
            found += _windows_candidates(version, env, home)
        else:
            found += _posix_candidates(version, env, platform, home)
    unique: dict[tuple[str, ...], Candidate] = {}
    for candidate in found:  # /bin is /usr/bin on merged-/usr systems: each file once
        executable, *arguments = candidate.command
        unique.setdefault((os.path.realpath(executable), *arguments), candidate)
    return list(unique.values())


def _on_path(name: str, env: Mapping[str, str]) -> list[Candidate]:
    """Every `name` on PATH, not just the first: the first may be a pyenv shim that fails."""
    return [Candidate(f"{name} on PATH", (str(Path(folder) / name),))
            for folder in env.get("PATH", "").split(os.pathsep)
            if folder and (Path(folder) / name).is_file()]


def _pyenv_versions(root: Path, version: str) -> list[Path]:
    """pyenv's installs of `version` (3.11.2, 3.11.10, ...), newest patch first."""
    def patch(folder: Path) -> int:
        tail = folder.name[len(version) + 1:]
        return int(tail) if tail.isdigit() else -1
    folders = [f for f in root.glob(f"{version}.*") if patch(f) >= 0]
    return sorted(folders, key=patch, reverse=True)


def _posix_candidates(version: str, env: Mapping[str, str], platform: str,
                      home: Path) -> list[Candidate]:
    name = f"python{version}"
    found = _on_path(name, env)
    pyenv_root = Path(env.get("PYENV_ROOT") or home / ".pyenv") / "versions"
    found += [Candidate("pyenv", (str(folder / "bin" / name),))
              for folder in _pyenv_versions(pyenv_root, version)]
    folders = [str(home / ".local" / "bin"),
               *_POSIX_FOLDERS["darwin" if platform == "darwin" else "linux"]]
    found += [Candidate(f"{name} in {folder.format(version=version)}",
                        (str(Path(folder.format(version=version)) / name),)) for folder in folders]
    return [c for c in found if Path(c.command[0]).is_file()]


def _windows_candidates(version: str, env: Mapping[str, str], home: Path) -> list[Candidate]:
    digits = version.replace(".", "")
    found = _on_path(f"python{version}.exe", env)  # the Microsoft Store's app alias
    launchers = [Path(c.command[0]) for c in _on_path("py.exe", env)]
    if env.get("LOCALAPPDATA"):
        launchers.append(Path(env["LOCALAPPDATA"]) / "Programs" / "Python" / "Launcher" / "py.exe")
    launchers.append(Path(env.get("SystemRoot") or "C:\\Windows") / "py.exe")
    found += [Candidate(f"the py launcher (py -{version})", (str(launcher), f"-{version}"))
              for launcher in launchers if launcher.is_file()][:1]
    installs = []
    if env.get("LOCALAPPDATA"):
        installs.append(("python.org installer (for you)",
                         Path(env["LOCALAPPDATA"]) / "Programs" / "Python" / f"Python{digits}"))
    if env.get("ProgramFiles"):
        installs.append(("python.org installer (for all users)",
                         Path(env["ProgramFiles"]) / f"Python{digits}"))
    installs += [("pyenv-win", folder)
                 for folder in _pyenv_versions(home / ".pyenv" / "pyenv-win" / "versions", version)]
    found += [Candidate(where, (str(folder / "python.exe"),)) for where, folder in installs
              if (folder / "python.exe").is_file()]
    return found


@dataclass
class Choice:
    """The interpreter that makes the environment (None: uv is to get one) and, for the log,
    the candidates tried before it and why they were passed over."""

    interpreter: Interpreter | None
    passed_over: list[str] = field(default_factory=list)


def choose_interpreter(preference: str, own: Path, candidates: Sequence[Candidate]) -> Choice:
    """The Python named in the preferences (refused, InstallRefused, when it cannot be used:
    the user asked for that one), else the first usable of Blender's own and `candidates`."""
    if preference:
        result = probe(Candidate("the Python named in FaceAdapt's preferences", (preference,)))
        if isinstance(result, str):
            raise InstallRefused(
                f"the Python for Install Backend in FaceAdapt's preferences ({preference}) "
                f"{result}: name a Python {versions_text()} there, or clear the field to let "
                "Install Backend find one")
        return Choice(result)
    passed_over = []
    for candidate in [Candidate("Blender's own Python", (str(own),)), *candidates]:
        result = probe(candidate)
        if isinstance(result, Interpreter):
            return Choice(result, passed_over)
        passed_over.append(f"{candidate.found} ({' '.join(candidate.command)}) {result}")
    return Choice(None, passed_over)


# --- the steps ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    stage: str  # what the user sees ("installing packages")
    command: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)  # added to the environment
    packages: int = 0  # packages the step collects: progress counts pip's lines for them
    advice: str = ""  # what to do when it fails, added to the message


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every install process: the user's (proxies, pip's index settings),
    without a PYTHONPATH or PYTHONHOME meant for another interpreter, unbuffered so progress
    arrives as it happens."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PYTHONUNBUFFERED="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env.update(extra or {})
    return env


def uv_steps(own: Path, user_dir: Path, venv: Path) -> list[Step]:
    """Get a standalone CPython with uv and make the environment with it: uv from PyPI into
    user_dir/uv (run by Blender's own Python), its Python into user_dir/python."""
    version = "{}.{}".format(*SUPPORTED_VERSIONS[0])
    uv = (str(own), "-m", "uv")
    env = {"PYTHONPATH": str(user_dir / "uv"), "UV_PYTHON_INSTALL_DIR": str(user_dir / "python")}
    return [
        Step(f"installing uv (no Python {versions_text()} found)",
             (str(own), "-m", "pip", "install", "--progress-bar", "off", "--upgrade", "--target",
              str(user_dir / "uv"), UV_REQUIREMENT), advice=NO_PYTHON_ADVICE),
        Step(f"downloading Python {version} with uv", (*uv, "python", "install", version), env,
             advice=NO_PYTHON_ADVICE),
        Step(f"creating the environment with uv's Python {version}",
             (*uv, "venv", "--seed", "--managed-python", "--python", version, str(venv)), env,
             advice=NO_PYTHON_ADVICE),
    ]


def plan(choice: Choice, own: Path, venv: Path, lock: Path, pins: Mapping[str, str]) -> list[Step]:
    """Make the environment, install the lock (`pins`, read from `lock`) into it without
    resolving (the lock is the whole set), add what PyPI's torch needs on this platform, and
    run the backend's check."""
    user_dir = venv.parent
    if choice.interpreter is not None:
        python = choice.interpreter
        make = [Step(f"creating the environment with Python {python.version[0]}."
                     f"{python.version[1]} ({python.found})",
                     (str(python.path), "-m", "venv", str(venv)))]
    else:
        make = uv_steps(own, user_dir, venv)
    venv_python = str(backend_python.venv_python(venv))
    pip = (venv_python, "-m", "pip", "install", "--progress-bar", "off", "--no-input")
    return [
        *make,
        Step("installing packages", (*pip, "--no-deps", "-r", str(lock)), packages=len(pins)),
        # PyPI's torch declares platform packages a lock made on one machine cannot pin (on
        # Linux the CUDA runtime, nvidia-* and triton): pip adds them, keeping the lock's pins.
        Step("installing torch's platform packages",
             (*pip, f"torch=={pins['torch']}", "--constraint", str(lock))),
        Step("checking the environment", (venv_python, "-c", backend_python.CHECK_CODE)),
    ]


def prepare(preference: str, own: Path, user_dir: Path, lock: Path = RUNTIME_LOCK,
            env: Mapping[str, str] | None = None) -> Installation:
    """Everything before the first download: reads the lock and chooses the interpreter.
    Raises InstallRefused with what to do."""
    if not lock.is_file():
        raise InstallRefused(f"the backend's runtime lock {lock} is missing: reinstall FaceAdapt")
    try:
        pins = read_lock(lock)
    except (OSError, ValueError) as exc:
        raise InstallRefused(f"cannot read the backend's runtime lock: {exc}; reinstall "
                             "FaceAdapt") from exc
    if "torch" not in pins:
        raise InstallRefused(f"the backend's runtime lock {lock} pins no torch: reinstall FaceAdapt")
    env = os.environ if env is None else env
    choice = choose_interpreter(preference, own, installed_candidates(env))
    venv = user_dir / "venv"
    return Installation(plan(choice, own, venv, lock, pins), venv, user_dir / LOG_NAME, choice.passed_over)


# --- running the steps ----------------------------------------------------------------------

@dataclass
class InstallProgress:
    stage: str = "starting"
    step: int = 0  # 1-based number of the running step
    steps: int = 0
    packages_done: int = 0
    packages_total: int = 0
    package: str = ""  # the package pip is collecting now

    def describe(self) -> str:
        text = f"step {self.step}/{self.steps}: {self.stage}"
        if self.packages_total:
            text += f" {self.packages_done}/{self.packages_total}"
        return text + (f" ({self.package})" if self.package else "")

    @property
    def fraction(self) -> float:
        if not self.steps or not self.step:
            return 0.0
        within = self.packages_done / self.packages_total if self.packages_total else 0.0
        return (self.step - 1 + within) / self.steps


class Installation:
    """Runs the steps one after another, each as its own process group whose output (stdout
    and stderr, read as it comes, any bytes) goes to the log. The environment being replaced
    is set aside as <venv>.previous until the new one is complete, and put back when a step
    fails or the user cancels."""

    def __init__(self, steps: Sequence[Step], venv: Path, log_path: Path,
                 passed_over: Sequence[str] = ()) -> None:
        self.steps = list(steps)
        self.venv = venv
        self.previous = venv.with_name(venv.name + ".previous")
        self.log_path = log_path
        self.passed_over = list(passed_over)
        self.progress = InstallProgress(steps=len(self.steps))
        self._index = -1
        self.started = False
        self._process: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._lines: queue.Queue[str] = queue.Queue()
        self._step_output: list[str] = []
        self._log: IO[str] | None = None
        self._stop_sent_at: float | None = None
        self._outcome: str | InstallFailed | None = None

    def start(self) -> None:
        """Set the current environment aside, open the log and start the first step."""
        self.started = True
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("w", encoding="utf-8")
        self._log.write("Install Backend\n")
        for line in self.passed_over:
            self._log.write(f"passed over: {line}\n")
        try:
            if self.previous.exists():
                # An earlier install ended without finishing: its environment comes back first.
                shutil.rmtree(self.venv, ignore_errors=True)
                self.previous.rename(self.venv)
            if self.venv.exists():
                self.venv.rename(self.previous)
        except OSError as exc:
            self._end(InstallFailed(f"cannot set the current environment {self.venv} aside "
                                    f"({exc}): close anything using it (a running track?) and "
                                    "try again"), restore=False)
            return
        self._next_step()

    def poll(self) -> bool:
        """Advance: read output, start the next step when one ends. True once finished."""
        assert self.started, "poll() before start()"
        if self._outcome is not None:
            return True
        self._read_output()
        process = self._process
        assert process is not None
        code = process.poll()
        if code is None:
            if self._stop_sent_at is not None and time.monotonic() - self._stop_sent_at > STOP_GRACE_S:
                signal_group(process, force=True)
            return False
        # Whatever the step left running in its group would hold the pipe open.
        signal_group(process, force=True)
        assert self._reader is not None
        self._reader.join(timeout=STOP_GRACE_S)
        self._read_output()
        step = self.steps[self._index]
        if self._stop_sent_at is not None:
            self._end(InstallFailed(f"Install Backend cancelled during {step.stage}; "
                                    f"{self._kept_text()}", cancelled=True), restore=True)
        elif code != 0:
            tail = "\n".join(line for line in self._step_output if line.strip())
            tail = "\n".join(tail.splitlines()[-TAIL_LINES:])
            message = (f"Install Backend failed {step.stage} (exit {code}):\n{tail}\n"
                       f"Full log: {self.log_path}. {self._kept_text()}")
            self._end(InstallFailed(f"{message}\n{step.advice}" if step.advice else message),
                      restore=True)
        elif self._index + 1 < len(self.steps):
            self._next_step()
        else:
            self._finish_checked()
        return self._outcome is not None

    def cancel(self) -> None:
        """Stop the running step's process group (SIGTERM, SIGKILL after STOP_GRACE_S)."""
        if self._process is not None and self._stop_sent_at is None and self._outcome is None:
            self._stop_sent_at = time.monotonic()
            signal_group(self._process, force=False)

    def outcome(self) -> str:
        """The backend check's message ("torch 2.13.0 on CPU"), or raises InstallFailed."""
        if isinstance(self._outcome, InstallFailed):
            raise self._outcome
        assert self._outcome is not None, "outcome() before the installation finished"
        return self._outcome

    def wait(self, on_progress: Callable[[InstallProgress], None] | None = None,
             should_cancel: Callable[[], bool] | None = None, interval: float = 0.2) -> None:
        """Start and block until finished (the EXEC path); `outcome()` then says how it ended."""
        if not self.started:
            self.start()
        while not self.poll():
            if should_cancel is not None and should_cancel():
                self.cancel()
            if on_progress is not None:
                on_progress(self.progress)
            time.sleep(interval)

    # -- internals --

    def _next_step(self) -> None:
        self._index += 1
        step = self.steps[self._index]
        self.progress = InstallProgress(step.stage, self._index + 1, len(self.steps),
                                        0, step.packages)
        self._step_output = []
        assert self._log is not None
        self._log.write(f"\n== {step.stage}\n$ {' '.join(step.command)}\n")
        self._log.flush()
        try:
            self._process = subprocess.Popen(
                step.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, env=child_environment(step.env), **new_group_arguments())
        except OSError as exc:
            message = f"Install Backend cannot run {step.command[0]} ({exc}). {self._kept_text()}"
            self._end(InstallFailed(f"{message}\n{step.advice}" if step.advice else message),
                      restore=True)
            return
        self._lines = queue.Queue()
        self._reader = threading.Thread(target=_read_lines, args=(self._process.stdout, self._lines),
                                        daemon=True)
        self._reader.start()

    def _read_output(self) -> None:
        assert self._log is not None
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                break
            self._log.write(line + "\n")
            self._step_output.append(line)
            del self._step_output[:-200]
            self._count_package(line)
        self._log.flush()

    def _count_package(self, line: str) -> None:
        """pip prints one of _COLLECTING per requirement, then "Installing collected packages"."""
        progress = self.progress
        if not progress.packages_total:
            return
        for prefix in _COLLECTING:
            if line.startswith(prefix):
                progress.packages_done = min(progress.packages_done + 1, progress.packages_total)
                requirement = (line[len(prefix):].split() or [""])[0]
                progress.package = requirement.rsplit("/", 1)[-1]
                return
        if line.startswith("Installing collected packages"):
            progress.package = "unpacking"

    def _finish_checked(self) -> None:
        python = backend_python.venv_python(self.venv)
        status = backend_python.check_answer(python, 0, self._step_output, [])
        if not status.ok:
            self._end(InstallFailed(f"Install Backend made {self.venv}, but {status.message}. "
                                    f"Full log: {self.log_path}. {self._kept_text()}"),
                      restore=True)
            return
        shutil.rmtree(self.previous, ignore_errors=True)
        self._end(status.message, restore=False)

    def _kept_text(self) -> str:
        return (f"The previous environment stays in {self.venv}." if self.previous.exists()
                else "Nothing was kept.")

    def _end(self, outcome: str | InstallFailed, restore: bool) -> None:
        if restore:
            shutil.rmtree(self.venv, ignore_errors=True)
            if self.previous.exists():
                try:
                    self.previous.rename(self.venv)
                except OSError as exc:
                    outcome = InstallFailed(f"{outcome} Putting the previous environment back "
                                            f"failed ({exc}): it is in {self.previous}.",
                                            getattr(outcome, "cancelled", False))
        self._outcome = outcome
        if self._log is not None:
            ending = f"installed: {outcome}" if isinstance(outcome, str) else f"not installed: {outcome}"
            self._log.write(f"\n== {ending}\n")
            self._log.close()
            self._log = None


def _read_lines(stream: IO[bytes], lines: queue.Queue[str]) -> None:
    """Every line of a step's output as it comes (any bytes: undecodable ones replaced)."""
    for raw in stream:
        lines.put(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
