"""Writing outputs so that nothing half-written is ever left behind: temp name, then rename."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success it is renamed onto `path`, else removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600; the final file gets the permissions of any other new file.
    tmp_path.chmod(0o666 & ~_umask())
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextmanager
def atomic_directory(path: Path, overwrite: bool) -> Iterator[Path]:
    """Yield an empty temp directory beside `path`; renamed into place only on success.

    An existing `path` is replaced only with `overwrite`, and only after the new one is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent))
    tmp.chmod(0o777 & ~_umask())
    try:
        yield tmp
        if path.exists():
            if not overwrite:
                raise FileExistsError(f"{path} appeared while writing; not replaced")
            old = path.with_name(f".{path.name}.old")
            _remove(old)
            with _signals_held():
                os.replace(path, old)
                os.replace(tmp, path)
                _remove(old)  # before a held Cancel ends the process
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
    """Hold SIGTERM/SIGINT while the old output is swapped for the new: a signal between the
    renames would leave neither. Python runs signal handlers in the main thread, between
    bytecodes; for the swap they are replaced by one that notes the signal, which is raised
    again under the original handlers afterwards. (Blocking the signals in this thread's mask
    does not hold them: the kernel hands them to another thread, e.g. a torch worker, and
    Python still runs the handler here at once. Windows has no masks at all.)"""
    # Those whose handler is Python's to change (getsignal is None for one set from C).
    held = [signum for signum in (getattr(signal, name, None) for name in ("SIGTERM", "SIGINT"))
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
