"""What a command and its worker say over the socket: length-prefixed JSON, and one byte to interrupt.

A command opens with one message carrying its standard input, output and error as file
descriptors (``SCM_RIGHTS``), so the worker writes to the same terminal, pipe or file the
command would have, and progress bars and colours behave as they would in a fresh process.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

HEADER = struct.Struct(">I")
MAX_MESSAGE = 4 << 20  # an environment and an argument list, far below this
INTERRUPT = b"\x03"


class WireError(Exception):
    """The other end sent something that is not a message, or went away."""


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode()
    framed = HEADER.pack(len(data)) + data
    if fds:
        sent = socket.send_fds(sock, [framed], fds)
        framed = framed[sent:]
    sock.sendall(framed)


def receive(sock: socket.socket, *, fds: int = 0) -> tuple[dict[str, Any], list[int]]:
    """One message, with up to ``fds`` descriptors that came with its first bytes."""
    received: list[int] = []
    if fds:
        data, received, _flags, _addr = socket.recv_fds(sock, HEADER.size, fds)
    else:
        data = sock.recv(HEADER.size)
    data += _exactly(sock, HEADER.size - len(data))
    (size,) = HEADER.unpack(data)
    if size > MAX_MESSAGE:
        raise WireError(f"a message of {size} bytes")
    try:
        message = json.loads(_exactly(sock, size))
    except ValueError:
        raise WireError("a message that is not JSON") from None
    if not isinstance(message, dict):
        raise WireError("a message that is not an object")
    return message, received


def _exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size > 0:
        chunk = sock.recv(min(size, 1 << 16))
        if not chunk:
            raise WireError("the other end closed the socket")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end, where the system says (Linux); else None."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    creds = struct.Struct("3i")
    _pid, uid, _gid = creds.unpack(sock.getsockopt(socket.SOL_SOCKET, option, creds.size))
    return int(uid)
