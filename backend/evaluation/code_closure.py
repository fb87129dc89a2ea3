"""The backend code a module runs through: the closure of its relative imports, read from source.

What a tracker's results are made of, as code, is its own module and every backend module it
imports, directly or through others, at module level or inside a function (an import inside a
function may run, so it counts). The closure is read with `ast`, never by importing, so it
costs no torch or MediaPipe import and works on a copy of the sources. Besides the modules:
- the `__init__.py` of every package on the way (importing a module runs them);
- the `.json` tables in each module's folder (read beside the code, e.g. the MediaPipe ->
  iBUG-68 table of landmarks/);
- the top-level names of the other packages imported (numpy, torch, mediapipe...): their
  installed versions count as well.
A relative import that names no module or package of the backend while a module by that name
is expected is refused: the copy of the sources is broken, and hashing around the hole would
let results made by the old module pass as current.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..formats.errors import BadInput

BACKEND_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class CodeClosure:
    """files: sorted paths under the root (modules, package __init__ files, .json tables);
    packages: sorted top-level import names of the non-standard-library packages imported."""

    files: tuple[Path, ...]
    packages: tuple[str, ...]


def _module_file(root: Path, parts: tuple[str, ...]) -> Path | None:
    """The file of the module or package `parts` (relative to the backend root), if any."""
    if not parts:
        return root / "__init__.py"
    module = root.joinpath(*parts[:-1], parts[-1] + ".py")
    if module.is_file():
        return module
    package = root.joinpath(*parts, "__init__.py")
    return package if package.is_file() else None


def _package_of(root: Path, path: Path) -> tuple[str, ...]:
    """The package parts a module file belongs to ('' the backend root itself)."""
    relative = path.relative_to(root).with_suffix("").parts
    return relative[:-1]


def _imports(root: Path, path: Path) -> tuple[list[Path], set[str]]:
    """The backend files `path` imports, and the top-level names of other packages it imports."""
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadInput(f"cannot read {path} to hash the code it runs ({exc})") from exc
    package = _package_of(root, path)
    files: list[Path] = []
    packages: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            packages.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            packages.add(str(node.module).split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level - 1 > len(package):
                continue  # above the backend (the extension package): not backend code
            base = package[:len(package) - (node.level - 1)]
            target = (*base, *node.module.split(".")) if node.module else base
            found = _module_file(root, target)
            if found is None:
                raise BadInput(f"{path} imports {'.' * node.level}{node.module or ''}, which is not "
                               f"a module under {root}: the sources are incomplete")
            files.append(found)
            # `from .package import module` imports the submodule too.
            for alias in node.names:
                submodule = _module_file(root, (*target, alias.name))
                if submodule is not None:
                    files.append(submodule)
    return files, packages


def code_closure(modules: Iterable[str], root: Path = BACKEND_ROOT) -> CodeClosure:
    """The closure of `modules` (paths relative to `root`, the backend package): every backend
    file they run through and the other packages they import. BadInput naming a module that
    does not exist."""
    pending: list[Path] = []
    for name in modules:
        path = root / name
        if not path.is_file():
            raise BadInput(f"{path} does not exist: no code to hash for it")
        pending.append(path)
    seen: set[Path] = set()
    packages: set[str] = set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        imported, names = _imports(root, path)
        packages |= names
        pending += imported
        # The __init__.py of every package from the root down to this module's.
        parts = _package_of(root, path)
        pending += [init for i in range(len(parts) + 1)
                    if (init := root.joinpath(*parts[:i], "__init__.py")).is_file()]
    tables = {table for path in seen for table in path.parent.glob("*.json")}
    standard = set(sys.stdlib_module_names) | {"__future__"}
    return CodeClosure(files=tuple(sorted(seen | tables)),
                       packages=tuple(sorted(packages - standard)))
