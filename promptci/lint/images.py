"""Lint's check of the files prompts send: each example pool reads as JSONL rows; each fixed
repository image exists, is within the size limit and is a real image by its first bytes; and no
prompt sends images to a model that takes none.

Like schema files, these can change without their prompt file changing, so this runs for every
prompt with an image part or an example pool on every lint, outside the per-file cache."""

from __future__ import annotations

from typing import Any

from ..diagnostics import Diagnostic, Facts
from ..errors import PromptciError
from ..files import read_text
from ..project import Project
from ..prompts import schemafiles
from ..prompts.images import ImageError, Images, is_template
from ..settings import ModelSettings, image_refusal
from ..yamlio import YamlDocument, parse_yaml


def check_images(project: Project, prompts: list[Facts]) -> list[Diagnostic]:
    """Every image part of every prompt, each problem at the part's line (code ``images``)."""
    limit = project.config.images.max_bytes
    images = Images(lambda rel, most: schemafiles.worktree(project.root, most, "image")(rel), limit)
    found = []
    for f in prompts:
        try:
            text = read_text(project.root / f.path, f.path)
            if "image" not in text and "examples" not in text:
                continue  # most prompts: no image part nor example pool, and no parse
            doc = parse_yaml(text, f.path)
        except PromptciError:
            continue  # the file's own analysis reports it
        found += _pool_problems(f.path, doc, images)
        parts = list(_image_parts(doc))
        if not parts:
            continue
        refusal = _refusal(project, doc.data)
        if refusal:
            at = doc.position(parts[0][0], value=True)
            found.append(Diagnostic(f.path, at.line, at.col, "error", "images", f"{refusal}; this prompt sends images"))
        for loc, ref in parts:
            if is_template(ref):
                continue  # a case gives it: checked as each case renders
            try:
                images.url(ref)
            except (ImageError, PromptciError) as exc:
                at = doc.position(loc, value=True)
                message = exc.message if isinstance(exc, PromptciError) else str(exc)
                found.append(Diagnostic(f.path, at.line, at.col, "error", "images", message))
    return found


def _pool_problems(path: str, doc: YamlDocument, images: Images) -> list[Diagnostic]:
    """An example pool that is missing, too large, or not JSONL objects, at its ``from:`` line."""
    from ..prompts.examples import MAX_POOL_BYTES, PoolError, read_pool

    pool = doc.data.get("examples") if isinstance(doc.data, dict) else None
    if not isinstance(pool, dict) or not isinstance(pool.get("from"), str):
        return []
    try:
        read_pool(images.read_file(pool["from"], MAX_POOL_BYTES, "example pool"), pool["from"])
    except (ImageError, PoolError, PromptciError) as exc:
        at = doc.position(("examples", "from"), value=True)
        message = exc.message if isinstance(exc, PromptciError) else str(exc)
        return [Diagnostic(path, at.line, at.col, "error", "examples", message)]
    return []


def _image_parts(doc: YamlDocument) -> Any:
    messages = doc.data.get("messages") if isinstance(doc.data, dict) else None
    for i, m in enumerate(messages if isinstance(messages, list) else ()):
        content = m.get("content") if isinstance(m, dict) else None
        for j, part in enumerate(content if isinstance(content, list) else ()):
            if isinstance(part, dict) and part.get("type") == "image" and isinstance(part.get("image"), str):
                yield ("messages", i, "content", j, "image"), part["image"]


def _refusal(project: Project, data: Any) -> str | None:
    """Why the prompt's own model (the project's, under the prompt's ``model:``) takes no images."""
    own = data.get("model") if isinstance(data, dict) else None
    try:
        settings = project.config.model.merged(ModelSettings.model_validate(own) if isinstance(own, dict) else None)
    except ValueError:
        return None  # the file's own analysis reports it
    return image_refusal(settings)
