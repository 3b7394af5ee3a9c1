"""Lint's check of schemas kept in files (``$ref: schemas/x.json``): each ref reads a file inside
the repository, and the schema it makes meets the same rules as one written inline.

The per-file analysis is cached by the prompt file's bytes and cannot see a schema file change,
so this runs for every prompt that refers to one, on every lint."""

from __future__ import annotations

from ..diagnostics import Diagnostic, Facts
from ..errors import PromptciError
from ..files import read_text
from ..project import Project
from ..prompts import schemafiles
from ..prompts.tools import problems
from ..yamlio import parse_yaml


def check_schema_files(project: Project, prompts: list[Facts]) -> list[Diagnostic]:
    """Every schema file ref of every prompt, read and checked, each problem at the ref's line."""
    found = []
    for f in prompts:
        try:
            text = read_text(project.root / f.path, f.path)
            if "$ref" not in text:
                continue  # most prompts: nothing to read, and no parse
            doc = parse_yaml(text, f.path)
        except PromptciError:
            continue  # the file's own analysis reports it
        if not isinstance(doc.data, dict) or not schemafiles.has_file_refs(doc.data):
            continue
        try:
            inlined = schemafiles.inline(doc.data, schemafiles.worktree(project.root))
        except schemafiles.SchemaFileError as exc:
            at = doc.position(exc.at, value=True)
            found.append(Diagnostic(f.path, at.line, at.col, "error", "tools", exc.message))
            continue
        for loc, message in problems(inlined):
            at = doc.position(loc)
            found.append(Diagnostic(f.path, at.line, at.col, "error", "tools", message))
    return found
