"""The one exception family promptci raises, and the exit codes it maps to.

Every error a user can cause is a :class:`PromptciError`. The CLI's single error
boundary turns it into a one-line message and its exit code; anything else is a
bug and exits with :data:`ExitCode.INTERNAL`.
"""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    """Documented process exit codes (docs/commands.md, "Exit codes")."""

    OK = 0
    FAILED = 1  # a check or a gate failed: lint found errors, a suite is below threshold
    USAGE = 2  # bad usage, bad config or bad input
    INTERNAL = 3  # a bug in promptci
    PUBLISH_FAILED = 4  # optimize --push: a branch could not be pushed or its PR not opened; it stays local
    BRANCH_CONFLICT = 5  # optimize --push: a human pushed to the PR branch; nothing was overwritten
    NOTHING_SELECTED = 5  # eval, compare: --filter/--shard/--sample matched no case (pytest's "no tests ran")
    INTERRUPTED = 130  # Ctrl-C or SIGTERM


class PromptciError(Exception):
    """An error the user can fix. ``str()`` gives ``file:line:col: message (hint)``."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        col: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.col = col
        self.hint = hint

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = self.path
            if self.line is not None:
                where += f":{self.line}"
                if self.col is not None:
                    where += f":{self.col}"
            where += ": "
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}{self.message}{hint}"


class InputError(PromptciError):
    """A file or value is malformed: YAML syntax, schema, template syntax."""


class NotFoundError(PromptciError):
    """A prompt, revision, label or file does not exist."""


class RenderError(PromptciError):
    """Variables passed to a prompt do not match its declaration."""


class GitError(PromptciError):
    """Git refused an operation or the directory is not a repository."""
