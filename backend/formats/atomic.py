"""Writing outputs so that nothing half-written is ever left behind: temp name, then rename."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
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
            _remove(old)
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


def _signals_held() -> AbstractContextManager[object]:
    """Hold SIGTERM/SIGINT while both renames happen: a signal between them would leave
    neither the old nor the new output. Windows has no signal masks (and no SIGTERM from
    Blender's Cancel, which terminates the process there): nothing to hold."""
    if not hasattr(signal, "pthread_sigmask"):
        return nullcontext()
    return _masked()


@contextmanager
def _masked() -> Iterator[None]:
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
