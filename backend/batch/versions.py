"""What a node runs the backend with, so a cluster whose nodes differ from the driver is refused
before any shot runs: FaceAdapt's version, Python's, and every package of the runtime lock and
its farm extra as installed there."""

from __future__ import annotations

import platform
import tomllib
from importlib import metadata
from pathlib import Path

from ..formats.errors import BadInput

# The extension's root: the folder holding backend/, the manifest and the locks (a checkout,
# or the installed Blender extension).
EXTENSION_ROOT = Path(__file__).resolve().parents[2]
LOCKS = ("requirements-backend.lock", "requirements-farm.lock")
CORE_PACKAGES = ("ray", "torch", "numpy")  # compared even where the lock files are not shipped


def faceadapt_version(root: Path = EXTENSION_ROOT) -> str:
    """The version in blender_manifest.toml ("unknown" where the manifest is not beside backend/)."""
    try:
        return str(tomllib.loads((root / "blender_manifest.toml").read_text())["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def locked_package_names(root: Path = EXTENSION_ROOT) -> list[str]:
    """The package names pinned in the runtime lock and its farm extra (those found)."""
    names = set(CORE_PACKAGES)
    for lock in LOCKS:
        try:
            lines = (root / lock).read_text().splitlines()
        except OSError:
            continue
        names.update(line.split("==")[0].strip() for line in lines
                     if line.strip() and not line.startswith("#") and "==" in line)
    return sorted(names)


def runtime_versions(packages: list[str]) -> dict[str, str]:
    """{"faceadapt", "python", each of `packages`: its version here ("missing" when not installed)}."""
    # Python's minor version: extension modules (torch's, Ray's own) differ between minors only.
    found = {"faceadapt": faceadapt_version(), "python": ".".join(platform.python_version_tuple()[:2])}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "missing"
    return found


def version_mismatches(expected: dict[str, str], nodes: dict[str, dict[str, str]]) -> list[str]:
    """One line per node and package whose version is not `expected`'s (the driver's)."""
    return [f"node {node}: {name} {versions.get(name, 'missing')}, the driver has {version}"
            for node, versions in sorted(nodes.items())
            for name, version in expected.items() if versions.get(name, "missing") != version]


def refuse_mismatches(expected: dict[str, str], nodes: dict[str, dict[str, str]], address: str) -> None:
    """BadInput listing every difference between the nodes and the driver."""
    problems = version_mismatches(expected, nodes)
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise BadInput(f"the Ray cluster at {address} runs another backend than this driver; every node "
                       "must run FaceAdapt from the same runtime lock (pip install --no-deps -r "
                       "requirements-backend.lock -r requirements-farm.lock, same FaceAdapt, same Python):\n  "
                       + "\n  ".join(shown))
