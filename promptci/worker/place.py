"""Where a warm worker listens, and which worker a command may use.

A worker belongs to one user, one project and one installation. Its socket lies in a directory
only that user can enter (``$XDG_RUNTIME_DIR/promptci``, else ``promptci-UID`` in the temporary
directory); a directory that another user owns, or that others can enter, is refused, never
repaired. The socket's name is a digest of the user, the project root, the interpreter, the
promptci source files' stamps and the environment variables read at import time, so a worker
never answers for another project, a changed checkout or a different set of model settings.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..version import __version__

PACKAGE = Path(__file__).resolve().parents[1]
# Read by torch, transformers and the hub when they are imported: a worker started under other
# values would not answer as a fresh process would.
IMPORT_TIME_ENV = ("HF_", "TRANSFORMERS_", "TORCH", "CUDA_", "OMP_", "MKL_", "PYTORCH_", "TOKENIZERS_", "PYTHON")
RUNTIME_ENV = ("PROMPTCI_WORKER",)  # the worker's own knobs: not part of its identity
MAX_SOCKET_PATH = 103  # sun_path: 108 bytes on Linux, 104 on macOS, with the terminating NUL


class Unsafe(Exception):
    """The worker directory cannot be trusted; the command runs in its own process."""


@dataclass(frozen=True)
class Place:
    """The files of one worker: its socket, its lock, and its log."""

    directory: Path
    key: str
    root: Path

    @property
    def socket(self) -> Path:
        return self.directory / f"{self.key}.sock"

    @property
    def lock(self) -> Path:
        return self.directory / f"{self.key}.lock"

    @property
    def log(self) -> Path:
        return self.directory / f"{self.key}.log"


def private_directory() -> Path:
    """The user's worker directory, created 0700; :class:`Unsafe` if it is not private."""
    uid = os.getuid()
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and _private(Path(runtime), uid):
        directory = Path(runtime) / "promptci"
    else:
        directory = Path(tempfile.gettempdir()) / f"promptci-{uid}"
    try:
        directory.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise Unsafe(f"cannot create {directory}: {exc.strerror}") from None
    if not _private(directory, uid):
        raise Unsafe(f"{directory} is not a directory private to this user (owner and mode 0700)")
    return directory


def _private(path: Path, uid: int) -> bool:
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == uid and not info.st_mode & 0o077


def find_root(start: Path) -> Path | None:
    """The project root as :meth:`promptci.project.Project.discover` finds it, without reading it."""
    here = start.resolve()
    candidates = [here, *here.parents]
    for marker in ("promptci.yaml", ".git"):
        for directory in candidates:
            if (directory / marker).exists():
                return directory
    return None


def identity(root: Path, env: dict[str, str] | None = None) -> str:
    """The digest that names the worker for ``root`` under this interpreter, code and environment."""
    env = dict(os.environ) if env is None else env
    pinned = sorted((k, v) for k, v in env.items() if k.startswith(IMPORT_TIME_ENV) and not k.startswith(RUNTIME_ENV))
    facts = [os.getuid(), str(root), sys.executable, __version__, _code_stamp(), pinned]
    return hashlib.sha256(json.dumps(facts).encode()).hexdigest()[:24]


def _code_stamp() -> list[int]:
    """How many source files promptci has and their newest change: an edited checkout is new code."""
    count = newest = 0
    stack = [str(PACKAGE)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False) and entry.name != "__pycache__":
                    stack.append(entry.path)
                elif entry.name.endswith(".py"):
                    count += 1
                    newest = max(newest, entry.stat().st_mtime_ns)
    return [count, newest]


def place_for(root: Path, env: dict[str, str] | None = None) -> Place:
    """The worker place for ``root``; :class:`Unsafe` where the directory is not private."""
    place = Place(private_directory(), identity(root, env), root)
    if len(os.fsencode(place.socket)) > MAX_SOCKET_PATH:
        raise Unsafe(f"the socket path {place.socket} is longer than a Unix socket allows; set a shorter TMPDIR")
    return place
