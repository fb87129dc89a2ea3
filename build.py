"""Build and validate the extension zip with Blender's own extension builder.

    python build.py [--blender PATH] [--out dist]

Without --blender, the builder script inside the installed `bpy` package is run with this
interpreter (it is stdlib only); with --blender, `blender --command extension build`.
Writes dist/faceadapt-<version>.zip and validates it.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# Inside the bpy package, under its version folder (5.0/, 5.3/, ...).
BUILDER = Path("scripts") / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"


def builder_command(blender: str | None) -> list[str]:
    """The command prefix running Blender's extension CLI."""
    if blender:
        return [blender, "--factory-startup", "--command", "extension"]
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("build.py: bpy is not installed here; run it with the project's .venv "
                 "(make venv) or pass --blender PATH")
    package = Path(next(iter(spec.submodule_search_locations)))
    scripts = sorted(package.glob(f"*/{BUILDER.as_posix()}"))
    if len(scripts) != 1:
        sys.exit(f"build.py: expected one Blender extension builder at {package}/<version>/{BUILDER}, "
                 f"found {len(scripts)}; pass --blender PATH")
    return [sys.executable, str(scripts[0])]


def build(out_dir: Path, blender: str | None = None) -> Path:
    manifest = tomllib.loads((ROOT / "blender_manifest.toml").read_text())
    zip_path = out_dir / f"{manifest['id']}-{manifest['version']}.zip"
    out_dir.mkdir(parents=True, exist_ok=True)
    command = builder_command(blender)
    subprocess.run([*command, "build", "--source-dir", str(ROOT), "--output-filepath",
                    str(zip_path)], check=True)
    subprocess.run([*command, "validate", str(zip_path)], check=True)
    return zip_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blender", help="a Blender binary to build with instead of bpy")
    parser.add_argument("--out", default=str(ROOT / "dist"), help="output folder")
    args = parser.parse_args()
    try:
        print(build(Path(args.out), args.blender))
    except subprocess.CalledProcessError as exc:
        sys.exit(f"build.py: the extension builder failed (exit {exc.returncode})")


if __name__ == "__main__":
    main()
