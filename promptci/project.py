"""A promptci project: its root directory and its configuration."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .config import CONFIG_FILE, Config, load_config
from .errors import InputError, NotFoundError


@dataclass(frozen=True)
class Project:
    """The repository root and the settings read from its ``promptci.yaml``."""

    root: Path
    config: Config
    config_path: Path | None = None

    @classmethod
    def discover(cls, start: str | Path | None = None) -> Project:
        """Find the project that contains ``start`` (default: ``$PROMPTCI_ROOT`` or the cwd).

        The root is the nearest directory holding ``promptci.yaml``, else the git
        top level. Outside both there is no project: :class:`NotFoundError`, so that
        no command writes its ``.promptci/`` into an arbitrary directory.
        """
        if start is None:
            start = os.environ.get("PROMPTCI_ROOT") or Path.cwd()
        here = Path(start).resolve()
        candidates = [here, *here.parents]
        for directory in candidates:
            config_path = directory / CONFIG_FILE
            if config_path.is_file():
                return cls(directory, load_config(config_path, CONFIG_FILE), config_path)
        for directory in candidates:
            if (directory / ".git").exists():
                return cls(directory, Config())
        raise NotFoundError(
            f"not in a promptci project: no {CONFIG_FILE} or git repository in {here} or above",
            hint="run `promptci init` to start one, or -C DIR to point at one",
        )

    @property
    def prompts_dir(self) -> Path:
        return self.path(self.config.prompts_dir)

    @property
    def pipelines_dir(self) -> Path:
        return self.path(self.config.pipelines_dir)

    @property
    def evals_dir(self) -> Path:
        return self.path(self.config.evals_dir)

    @property
    def labels_path(self) -> Path:
        return self.path(self.config.labels_file)

    def path(self, relative: str | Path) -> Path:
        """``relative`` resolved against the root; paths that leave the repository are refused."""
        resolved = (self.root / relative).resolve()
        if not resolved.is_relative_to(self.root):
            raise InputError(
                f"'{relative}' is outside the repository {self.root}",
                hint="keep prompts, suites and datasets inside the repository",
            )
        return resolved

    def rel(self, path: Path) -> str:
        """``path`` relative to the root, with forward slashes, as git and messages show it."""
        resolved = path.resolve()
        if resolved.is_relative_to(self.root):
            return resolved.relative_to(self.root).as_posix()
        return str(path)
