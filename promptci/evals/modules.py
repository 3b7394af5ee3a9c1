"""Python scorers come from the repository: a module is found as a file under the root, never
on ``sys.path``, so a suite cannot name ``os:system`` or a package installed on the machine."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from ..errors import InputError


def repository_module(root: Path, name: str) -> Path:
    """The file of module ``name`` (``pkg.mod``) inside ``root``; anything else raises :class:`InputError`."""
    parts = name.split(".")
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            resolved = candidate.resolve()
            if not resolved.is_relative_to(root.resolve()):
                raise InputError(f"python scorer module '{name}' links outside the repository")
            return resolved
    raise InputError(
        f"python scorer module '{name}' is not a file in the repository",
        hint=f"put it at {'/'.join(parts)}.py under the repository root",
    )


def load_repository_module(root: Path, name: str) -> ModuleType:
    """Import module ``name`` from its file inside ``root`` (see :func:`repository_module`).

    The root goes on ``sys.path`` so that the module can import its neighbours.
    """
    path = repository_module(root, name)
    loaded = sys.modules.get(name)
    where = getattr(loaded, "__file__", None)
    if loaded is not None and where and Path(where).resolve() == path:
        return loaded
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise InputError(f"python scorer: importing '{name}' failed: {type(exc).__name__}: {exc}") from None
    return module
