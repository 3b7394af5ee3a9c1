"""What a git remote or branch named by a user may be.

These values reach ``git fetch`` and ``git push`` from ``promptci.yaml`` and from flags, both of
which a pull request controls. git reads a leading ``-`` as an option (``--upload-pack=CMD``
runs CMD) and ``ext::`` as a command to run, so each value is checked where it is read, and
the git calls put it after ``--end-of-options`` as well.
"""

from __future__ import annotations

import re

_REMOTE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SCHEMES = {"https", "http", "ssh", "git", "file", "git+ssh", "ssh+git"}
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_TRANSPORT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*::")  # ext::, fd::, any remote helper
_BRANCH_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
MAX_REMOTE = 1024


def check_remote(value: str) -> str:
    """``value`` if it is a remote's name, a URL of a known scheme, ``host:path`` or a path;
    otherwise :class:`ValueError` saying why."""
    if not value:
        raise ValueError("a remote cannot be empty")
    if len(value) > MAX_REMOTE:
        raise ValueError(f"a remote is at most {MAX_REMOTE} characters")
    if value.startswith("-"):
        raise ValueError(f"a remote cannot start with '-' (git would read {value.split('=')[0]!r} as an option)")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("a remote cannot hold control characters")
    if _TRANSPORT.match(value):
        raise ValueError("a remote cannot name a transport helper ('ext::', 'fd::' …): git would run it")
    if scheme := _SCHEME.match(value):
        if scheme.group(1).lower() not in _SCHEMES:
            raise ValueError(f"a remote URL's scheme must be one of {', '.join(sorted(_SCHEMES))}")
        authority = value[scheme.end() :].split("/", 1)[0].rsplit("@", 1)[-1]
        if authority.startswith("-"):  # ssh would read the host as an option (-oProxyCommand=…)
            raise ValueError("a remote URL's host cannot start with '-'")
        return value
    if _REMOTE_NAME.fullmatch(value) or "/" in value or ":" in value:
        return value  # a remote's name, a path, or scp-like user@host:path
    raise ValueError("a remote is a remote's name (origin), a URL, host:path or a path")


def is_remote_name(value: str) -> bool:
    """Whether ``value`` names a configured remote rather than a URL or a path."""
    return _REMOTE_NAME.fullmatch(value) is not None


def check_branch(value: str) -> str:
    """``value`` if git would take it as a branch name and it cannot be read as an option."""
    parts = value.split("/")
    if (
        not value
        or len(value) > 200
        or value.endswith(".lock")
        or ".." in value
        or not all(_BRANCH_PART.fullmatch(p) for p in parts)
    ):
        raise ValueError("a branch is letters, digits and '._-' in '/'-separated parts, none starting with '-' or '.'")
    return value
