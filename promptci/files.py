"""Reading the files a contributor controls: bounded in size, and UTF-8 or a positioned error.

Every prompt, suite, config, labels, vars and dataset file is read through here, so
a pull request cannot make promptci read a 10 GB file or crash on a stray byte.
Whether a path stays inside the project is :meth:`promptci.project.Project.path`'s job.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from .errors import InputError

MAX_TEXT_BYTES = 4 * 1024 * 1024  # a prompt, suite, config, labels or vars file
MAX_DATASET_BYTES = 256 * 1024 * 1024  # a JSONL or CSV dataset


def read_text(path: Path, shown: str, *, limit: int = MAX_TEXT_BYTES, what: str = "file") -> str:
    """The text of ``path``; a file over ``limit`` bytes, unreadable or not UTF-8 raises :class:`InputError`."""
    return decode(read_bytes(path, shown, limit=limit, what=what), shown)


def read_bytes(path: Path, shown: str, *, limit: int = MAX_TEXT_BYTES, what: str = "file") -> bytes:
    """The bytes of ``path``, refusing more than ``limit`` without reading them."""
    with open_regular(path, shown, limit=limit, what=what) as fh:
        data = fh.read(limit + 1)
    check_size(len(data), shown, limit=limit, what=what)  # it grew since it was opened
    return data


def open_regular(path: Path, shown: str, *, limit: int, what: str = "file") -> BinaryIO:
    """``path`` opened for reading, if it is a regular file of at most ``limit`` bytes.

    A FIFO, a device (``/dev/zero``, also through a link), a socket or a directory is refused
    before a byte is read; the file is opened without blocking, so a FIFO cannot hang it.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except IsADirectoryError:
        raise InputError(f"cannot read {what}: it is a directory", path=shown) from None
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror or exc}", path=shown) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InputError(f"cannot read {what}: it is a directory", path=shown)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"cannot read {what}: not a regular file", path=shown)
        check_size(info.st_size, shown, limit=limit, what=what)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def check_size(size: int, shown: str, *, limit: int = MAX_TEXT_BYTES, what: str = "file") -> None:
    """Refuse ``size`` bytes when it is over ``limit``."""
    if size > limit:
        raise InputError(
            f"{what} is larger than {_size(limit)}; refusing to read it",
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


def _size(limit: int) -> str:
    return (
        f"{limit // 2**30} GiB" if limit >= 2**30 else f"{limit // 2**20} MiB" if limit >= 2**20 else f"{limit} bytes"
    )
