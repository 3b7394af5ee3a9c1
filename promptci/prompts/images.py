"""Images in a prompt: a repository path, or an ``https://`` URL, sent in each provider's shape.

An image part names its image by a repository path (``img/logo.png``, relative to the project
root) or a URL, either written in the prompt or given by a case through a variable of type
``image``. A path is read when the prompt renders (from the working tree, or from the commit a
version is read at), checked, and sent inline as a base64 data URL; a URL is sent as it is, for
the provider to fetch (promptci never fetches it).

A path is refused when it leaves the repository, is missing, is larger than the limit
(``images.max_bytes`` in ``promptci.yaml``, :data:`DEFAULT_MAX_BYTES` by default), or is not a
PNG, JPEG, GIF or WebP image by its first bytes, whatever its name says. A URL is refused unless
it is ``https://``. What is stored and shown of an inline image is its media type, size and
sha256, never its bytes; a URL passes the redaction layer, which masks credentials in it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_MAX_BYTES = 5 * 1024 * 1024  # Anthropic's limit per image; OpenAI's is 20 MB
Reader = Callable[[str, int], "bytes | None"]  # (root-relative path, byte limit) -> its bytes; None: no file

_PATH = re.compile(r"^(?:[A-Za-z0-9_\-][A-Za-z0-9_.\-]*/)*[A-Za-z0-9_\-][A-Za-z0-9_.\-]*$")
_DATA_URL = re.compile(r"^data:(image/[a-z+.-]+);base64,([A-Za-z0-9+/=]*)$")


class ImageError(ValueError):
    """An image that cannot be sent, and why (one line)."""


@dataclass(frozen=True)
class Images:
    """How a prompt's images are read: a reader over its repository files and a size limit."""

    read: Reader | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    _read: dict[str, bytes] = field(default_factory=dict, init=False, compare=False, repr=False)

    def part(self, ref: str, detail: str | None) -> dict[str, Any]:
        """The OpenAI content part for image ``ref``: a data URL for a path, the URL itself else."""
        url = self.url(ref)
        image: dict[str, Any] = {"url": url}
        if detail is not None:
            image["detail"] = detail
        return {"type": "image_url", "image_url": image}

    def url(self, ref: str) -> str:
        ref = ref.strip()
        if "://" in ref or ref.startswith(("data:", "//")):
            if not ref.startswith("https://"):
                raise ImageError(f"image {clip_ref(ref)!r}: only https:// URLs and repository paths are images")
            return ref
        data = self.bytes_of(ref)
        return f"data:{media_type(data, ref)};base64,{base64.b64encode(data).decode()}"

    def read_file(self, path: str, limit: int, what: str) -> bytes:
        """The bytes of repository file ``path`` (an example pool, say), at most ``limit``."""
        if self.read is None:
            raise ImageError(f"{what} '{path}': it can only be read from the prompt's repository")
        data = self.read(path, limit)
        if data is None:
            raise ImageError(f"{what} '{path}' not found")
        return data

    def bytes_of(self, path: str) -> bytes:
        """The checked bytes of repository image ``path``, read once per prompt version."""
        if not _PATH.match(path) or ".." in path.split("/"):
            raise ImageError(f"image {clip_ref(path)!r}: a path inside the repository, relative to its root")
        if path not in self._read:  # the content hash and every case's render share one read
            self._read[path] = self.read_file(path, self.max_bytes, "image")
        return self._read[path]


def media_type(data: bytes, shown: str) -> str:
    """The image type ``data`` is by its first bytes; anything else is refused, whatever its name."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    raise ImageError(f"image '{shown}' is not a PNG, JPEG, GIF or WebP image (by its first bytes)")


def clip_ref(ref: str) -> str:
    return ref if len(ref) <= 80 else ref[:77] + "…"


def is_template(ref: str) -> bool:
    return "{{" in ref or "{%" in ref


def stored(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` as the store and the screen get them: an inline image as its media type, size and
    sha256 (``data:image/png;sha256=…;bytes=1234``), never its base64."""
    if not any(isinstance(m.get("content"), list) for m in messages):
        return messages
    return [{**m, "content": [_stored_part(p) for p in m["content"]]} if isinstance(m.get("content"), list) else m
            for m in messages]  # fmt: skip


def _stored_part(part: Mapping[str, Any]) -> Any:
    image = part.get("image_url") if part.get("type") == "image_url" else None
    url = image.get("url") if isinstance(image, Mapping) else None
    match = _DATA_URL.match(url) if isinstance(url, str) else None
    if image is None or match is None:
        return part
    data = base64.b64decode(match.group(2))
    summary = f"data:{match.group(1)};sha256={hashlib.sha256(data).hexdigest()[:16]};bytes={len(data)}"
    return {**part, "image_url": {**image, "url": summary}}


def has_images(messages: list[dict[str, Any]]) -> bool:
    return any(
        isinstance(m.get("content"), list) and any(p.get("type") == "image_url" for p in m["content"]) for m in messages
    )


def digests(spec_messages: Any, images: Images) -> dict[str, str]:
    """The sha256 of each image a prompt names by a fixed repository path: what its content hash
    covers, so that replacing the image's bytes is a new version. A URL is covered by its text."""
    found: dict[str, str] = {}
    for m in spec_messages or ():
        content = m.get("content") if isinstance(m, Mapping) else None
        for part in content if isinstance(content, list) else ():
            ref = part.get("image") if isinstance(part, Mapping) and part.get("type") == "image" else None
            if isinstance(ref, str) and not is_template(ref) and "://" not in ref:
                found[ref] = hashlib.sha256(images.bytes_of(ref.strip())).hexdigest()
    return found
