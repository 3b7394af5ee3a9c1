"""Reading the files a contributor controls: bounded in size, and UTF-8 or a positioned error.

Every prompt, suite, config, labels, vars and dataset file is read through here, so
a pull request cannot make promptci read a 10 GB file or crash on a stray byte.
Whether a path stays inside the project is :meth:`promptci.project.Project.path`'s job.
"""

from __future__ import annotations

from pathlib import Path

from .errors import InputError

MAX_TEXT_BYTES = 4 * 1024 * 1024  # a prompt, suite, config, labels or vars file
MAX_DATASET_BYTES = 256 * 1024 * 1024  # a JSONL or CSV dataset


def read_text(path: Path, shown: str, *, limit: int = MAX_TEXT_BYTES, what: str = "file") -> str:
    """The text of ``path``; a file over ``limit`` bytes, unreadable or not UTF-8 raises :class:`InputError`."""
    return decode(read_bytes(path, shown, limit=limit, what=what), shown)


def read_bytes(path: Path, shown: str, *, limit: int = MAX_TEXT_BYTES, what: str = "file") -> bytes:
    """The bytes of ``path``, refusing more than ``limit`` without reading them."""
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except IsADirectoryError:
        raise InputError(f"cannot read {what}: it is a directory", path=shown) from None
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror or exc}", path=shown) from None
    check_size(len(data), shown, limit=limit, what=what)
    return data


def check_size(size: int, shown: str, *, limit: int = MAX_TEXT_BYTES, what: str = "file") -> None:
    """Refuse ``size`` bytes when it is over ``limit``."""
    if size > limit:
        raise InputError(
            f"{what} is larger than {limit // (1024 * 1024)} MiB; refusing to read it",
            path=shown,
            hint="split it, or keep large data in a dataset file",
        )


def decode(data: bytes, shown: str) -> str:
    """``data`` as UTF-8 (a leading BOM is dropped); a bad byte is named with its line and column."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise InputError(
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} cannot be decoded",
            path=shown,
            line=line,
            col=col,
            hint="save the file as UTF-8",
        ) from None
