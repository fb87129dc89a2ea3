"""Writing outputs so that nothing half-written is ever left behind: temp name, then rename;
and what an output directory may replace.

An output directory is claimed before any work: its parent made and proven writable, a lock
beside it refusing a second run on the same path, an existing directory checked to be one of
ours (`DirectoryKind`) that holds none of the inputs. Temp names carry the owner's pid, so the
next run on the same path removes what a killed process left (SIGKILL runs no cleanup).
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from .errors import BadInput


@dataclass(frozen=True)
class DirectoryKind:
    """A kind of output directory FaceAdapt writes, as `--overwrite` recognises it: `marker`
    is a JSON object holding `marker_key`, and the directory holds only `entries`."""

    description: str  # "FaceAdapt results directory"
    marker: str  # "result.json"
    marker_key: str  # "schema"
    entries: frozenset[str]

    def foreign_to(self, path: Path) -> str | None:
        """Why `path` is not a directory of this kind (None when it is one)."""
        if path.is_symlink() or not path.is_dir():
            return "it is not a directory"
        try:
            document = json.loads((path / self.marker).read_text())
        except (OSError, ValueError):
            return f"it has no readable {self.marker}"
        if not isinstance(document, dict) or self.marker_key not in document:
            return f"its {self.marker} is not FaceAdapt's (no '{self.marker_key}')"
        others = sorted(p.name for p in path.iterdir() if p.name not in self.entries)
        if others:
            shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
            return f"it holds files FaceAdapt did not write ({shown})"
        return None


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _temp_prefix(path: Path, pid: int | None = None) -> str:
    """Prefix of the temp names beside `path` of process `pid` (default this one): the pid says
    whose they are."""
    return f".{path.name}.pid{os.getpid() if pid is None else pid}."


def _process_alive(pid: int) -> bool:
    """Whether process `pid` exists. Without a POSIX os.kill (Windows) every owner counts as
    alive: a stale temp is left rather than a live run's deleted."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def sweep_stale_temps(path: Path) -> list[Path]:
    """Remove the temp files and `.partial` directories beside `path` whose owner process is
    gone (killed before its cleanup ran); returns what was removed."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.pid(\d+)\..*(\.partial|\.tmp.*)$")
    removed = []
    with suppress(OSError):
        for entry in path.parent.iterdir():
            match = pattern.match(entry.name)
            if match and not _process_alive(int(match.group(1))):
                _remove(entry)
                removed.append(entry)
    return removed


def release_dead_writer(path: Path, pid: int) -> None:
    """Remove the lock and temp output beside `path` of the writer with `pid`, which the caller
    knows to be dead: a process on another machine (a farm's worker on shared storage), whose
    pid this machine cannot check, so neither the lock nor the sweep would take them over."""
    lock = path.with_name(f".{path.name}.lock")
    with suppress(OSError, ValueError):
        if int(lock.read_text().strip() or 0) == pid:
            lock.unlink()
    prefix = _temp_prefix(path, pid)
    with suppress(OSError):
        for entry in path.parent.iterdir():
            if entry.name.startswith(prefix):
                _remove(entry)


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success it is renamed onto `path`, else removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp" + path.suffix,
                               dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600; the final file gets the permissions of any other new file.
    tmp_path.chmod(0o666 & ~_umask())
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def check_replaceable(path: Path, overwrite: bool, kind: DirectoryKind | None,
                      inputs: Iterable[Path] = ()) -> None:
    """Refuse (BadInput naming `path`) an output that may not be written: one that holds or
    is an input, an existing one without `overwrite`, and with it anything but a directory of
    `kind` (kind None: the caller's own folder, e.g. a cache entry, replaced whatever it is)."""
    path = Path(path)
    target = path.resolve()
    for source in inputs:
        source = Path(source).resolve()
        if source == target or target in source.parents:
            raise BadInput(f"--out {path} holds the input {source}; FaceAdapt never replaces "
                           "its input: choose another --out")
    if not path.exists() and not path.is_symlink():
        return
    if not overwrite:
        raise BadInput(f"--out {path} already exists; pass --overwrite to replace it or choose "
                       "another directory")
    if kind is not None:
        reason = kind.foreign_to(path)
        if reason is not None:
            raise BadInput(f"--out {path} is not a {kind.description} ({reason}); --overwrite "
                           f"replaces only a {kind.description}: choose another --out or "
                           "remove it yourself")


def check_replaceable_file(path: Path, overwrite: bool) -> None:
    """Refuse (BadInput naming `path`) a single-file output that may not be written: an
    existing one without `overwrite`, and a directory (or anything but a file) ever."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise BadInput(f"--out {path} is a folder, not a file; --overwrite replaces only the "
                       "file it names: choose a file path")
    if path.exists() and not overwrite:
        raise BadInput(f"--out {path} already exists; pass --overwrite to replace it or choose "
                       "another file")


@contextmanager
def _output_lock(path: Path) -> Iterator[Path]:
    """Hold `.<name>.lock` beside `path` (created exclusively, holding our pid); a lock held
    by a live process is refused, one left by a dead process taken over."""
    lock = path.with_name(f".{path.name}.lock")
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except OSError as exc:
            if not isinstance(exc, FileExistsError):
                raise _not_writable(path, exc) from exc
            try:
                owner = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                owner = 0
            if not owner:  # being created this instant, or unreadable: never taken over
                break
            if _process_alive(owner):
                raise BadInput(f"--out {path} is being written by another FaceAdapt run (pid "
                               f"{owner}); wait for it or choose another --out (if no such "
                               f"run is going on, delete {lock})") from None
            lock.unlink(missing_ok=True)  # its owner is gone
            continue
        with os.fdopen(fd, "w") as file:
            file.write(str(os.getpid()))
        break
    else:
        raise BadInput(f"--out {path}: cannot take the lock {lock}; remove it if no FaceAdapt "
                       "run is writing there")
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)


def _not_writable(path: Path, exc: OSError) -> Exception:
    """BadInput for a folder the OS refuses to write in (read-only, no permission); any other
    OSError is not the user's input and stays what it is."""
    if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
        return exc
    return BadInput(f"--out {path}: cannot write in {path.parent} ({exc.strerror}); choose a "
                    "writable location")


def _make_parent(path: Path) -> None:
    """The parent of `path`, created when missing; BadInput when it cannot be or is not
    writable, so the run fails before its work rather than after."""
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"--out {path}: cannot create its folder {parent} ({exc.strerror}); "
                       "choose a writable location") from exc
    if not os.access(parent, os.W_OK | os.X_OK):
        raise BadInput(f"--out {path}: its folder {parent} is not writable; choose a writable "
                       "location")


@contextmanager
def atomic_directory(path: Path, overwrite: bool, kind: DirectoryKind | None = None,
                     inputs: Iterable[Path] = ()) -> Iterator[Path]:
    """Claim `path` (see check_replaceable and the module doc) and yield an empty temp
    directory beside it, renamed into place only on success. Enter it before the work: every
    refusal is a BadInput raised on entry.

    An existing `path` is replaced only with `overwrite`, and only after the new one is complete.
    """
    path = Path(path)
    check_replaceable(path, overwrite, kind, inputs)
    _make_parent(path)
    with _output_lock(path) as lock:
        sweep_stale_temps(path)
        try:
            tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".partial",
                                        dir=path.parent))
        except OSError as exc:
            raise _not_writable(path, exc) from exc
        tmp.chmod(0o777 & ~_umask())
        try:
            yield tmp
            if path.exists() or path.is_symlink():
                if not overwrite:
                    raise FileExistsError(f"{path} appeared while writing; not replaced")
                old = path.with_name(f".{path.name}.old")  # ours alone: the lock is held
                _remove(old)
                with _signals_held():
                    os.replace(path, old)
                    os.replace(tmp, path)
                    _remove(old)  # before a held Cancel ends the process
                    lock.unlink(missing_ok=True)
            else:
                os.replace(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _remove(path: Path) -> None:
    """Remove what an overwrite set aside: a directory, or a file or link that stood there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGTERM/SIGINT/SIGHUP while the old output is swapped for the new: a signal between the
    renames would leave neither. Python runs signal handlers in the main thread, between
    bytecodes; for the swap they are replaced by one that notes the signal, which is raised
    again under the original handlers afterwards. (Blocking the signals in this thread's mask
    does not hold them: the kernel hands them to another thread, e.g. a torch worker, and
    Python still runs the handler here at once. Windows has no masks at all.)"""
    # Those whose handler is Python's to change (getsignal is None for one set from C).
    held = [signum for signum in (getattr(signal, name, None) for name in ("SIGTERM", "SIGINT", "SIGHUP"))
            if signum is not None and signal.getsignal(signum) is not None]
    if threading.current_thread() is not threading.main_thread() or not held:
        yield  # handlers run in the main thread: they cannot interrupt this one
        return
    received: list[int] = []
    previous = {signum: signal.signal(signum, lambda signum, _frame: received.append(signum))
                for signum in held}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in received:
            signal.raise_signal(signum)
