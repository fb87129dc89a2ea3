"""Install Backend for real, as Blender 5.3 runs it: not part of `make test`, since it downloads
and installs the whole runtime lock (minutes, GB). `make check-install` runs it.

    <python 3.13> tests/blender_addon/install_backend_check.py [--user-dir DIR] [--footage MP4]
        [--install-python PYTHON]

With the install logic the operator uses (blender_addon/backend_install.py, no bpy), run by
this interpreter as Blender's own: choose a Python 3.11/3.12 (a 3.13 running this is passed
over), make a fresh environment in DIR/venv from requirements-backend.lock, then run a
2-frame `track` with it through the add-on's backend client. Prints the interpreter chosen,
each stage, the install time, the environment's size and the track's result; exits 1 on any
failure.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def load_extension() -> None:
    """Import the repository as the package `faceadapt`, as Blender imports the extension."""
    spec = importlib.util.spec_from_file_location("run_program", REPO_ROOT / "blender_addon" / "run_program.py")
    assert spec is not None and spec.loader is not None
    launcher = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launcher)
    launcher.load_extension_package()


def folder_size(path: Path) -> int:
    """Bytes of the files under `path` (links not followed: the base interpreter is not counted)."""
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def main() -> int:
    load_extension()
    from faceadapt.backend.data_location import data_dir
    from faceadapt.blender_addon import backend_install, backend_python
    from faceadapt.blender_addon.backend_client import BackendFailure, start_backend

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--user-dir", type=Path, default=REPO_ROOT / "out" / "install-check",
                        help="stands in for the extension's user folder (its venv is replaced)")
    parser.add_argument("--footage", type=Path, default=data_dir() / "videos" / "lp_driving_d3.mp4")
    parser.add_argument("--install-python", default="",
                        help="as the preference Python for Install Backend (default: none, choose)")
    args = parser.parse_args()
    user_dir = args.user_dir.resolve()
    if not args.footage.is_file():
        sys.exit(f"footage {args.footage} not found: pass --footage or set FACEADAPT_DATA")
    print(f"started by Python {sys.version.split()[0]} ({sys.executable})")
    # A fresh install: neither a previous environment nor pip's "already satisfied" help it.
    for leftover in (user_dir / "venv", user_dir / "venv.previous"):
        shutil.rmtree(leftover, ignore_errors=True)

    try:
        installation = backend_install.prepare(args.install_python, Path(sys.executable), user_dir)
    except backend_install.InstallRefused as exc:
        print(f"refused: {exc}")
        return 1
    for line in installation.passed_over:
        print(f"passed over: {line}")
    last = [""]

    def show(progress: backend_install.InstallProgress) -> None:
        # One line per stage and per tenth of the packages, not one per poll.
        text = f"step {progress.step}/{progress.steps}: {progress.stage}"
        if progress.packages_total:
            text += f" {progress.packages_done * 10 // progress.packages_total * 10}%"
        if text != last[0]:
            last[0] = text
            print(f"  {time.perf_counter() - started:6.0f} s  {text}", flush=True)

    started = time.perf_counter()
    installation.wait(on_progress=show, interval=0.5)
    install_s = time.perf_counter() - started
    try:
        message = installation.outcome()
    except backend_install.InstallFailed as exc:
        print(f"install failed after {install_s:.0f} s: {exc}")
        return 1
    venv = installation.venv
    print(f"installed in {install_s:.0f} s: {message}; {venv} holds "
          f"{folder_size(venv) / 2**30:.2f} GiB; log {installation.log_path}")

    python = backend_python.venv_python(venv)
    out = user_dir / "track"
    started = time.perf_counter()
    run = start_backend(python, ["track", str(args.footage), "--out", str(out), "--frames", "0-1",
                                 "--texture-size", "0", "--overwrite", "--device", "cpu"])
    try:
        result = Path(run.wait())
    except BackendFailure as exc:
        print(f"track with {python} failed ({exc.kind}): {exc.message}")
        return 1
    source = json.loads((result / "result.json").read_text())["source"]
    print(f"track by {python} in {time.perf_counter() - started:.0f} s: {result} "
          f"(source {json.dumps(source)})")
    return 0 if (result / "tracking.npz").is_file() else 1


if __name__ == "__main__":
    sys.exit(main())
