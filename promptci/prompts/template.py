"""Jinja2 for prompts: a sandbox under limits, strict undefined variables, and variable discovery."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta

from .sandbox import LimitedEnvironment, budgeted


@lru_cache(maxsize=1)
def environment() -> LimitedEnvironment:
    """The environment every prompt renders in.

    ``trim_blocks`` and ``lstrip_blocks`` are on, so ``{% if %}`` lines leave no blank
    lines behind in the rendered prompt.
    """
    return LimitedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


@lru_cache(maxsize=1024)
def _compile(source: str) -> jinja2.Template:
    return environment().from_string(source)


def used_variables(source: str) -> set[str]:
    """Names a template reads from its context, minus the environment's globals."""
    env = environment()
    return set(meta.find_undeclared_variables(env.parse(source))) - set(env.globals)


def hazards(source: str) -> list[tuple[int, str]]:
    """``(line, message)`` for what the template is sure to run out of its limits on, or cannot
    render at all: what lint accepts renders."""
    from .sandbox import hazards as find

    found = find(environment().parse(source))
    if not found:
        try:
            _compile(source)
        except (SyntaxError, RecursionError, MemoryError):  # Python's own limits on the compiled code
            found.append((1, "template nests too deeply to compile; flatten its blocks"))
    return found


def secret_in(source: str) -> tuple[int, int] | None:
    """(line, column) in ``source`` of what looks like a credential in its literal text, not in
    its tags: a bundle ships the text as written, so ``?token={{ tok }}`` is fine and
    ``?token=abc…`` is not."""
    from ..redact import find_secret

    literal = _blank_tags(source)
    span = find_secret(literal)
    if span is None:
        return None
    before = literal[: span[0]]
    return before.count("\n") + 1, span[0] - (before.rfind("\n") + 1) + 1


_CLOSERS = {"{{": "}}", "{%": "%}", "{#": "#}"}
_OPENER = re.compile(r"\{[{%#]")


def _blank_tags(source: str) -> str:
    """``source`` with every tag blanked out (its newlines kept), in one pass."""
    parts, at = [], 0
    while opener := _OPENER.search(source, at):
        end = source.find(_CLOSERS[opener.group()], opener.end())
        end = len(source) if end < 0 else end + 2
        parts += [source[at : opener.start()], re.sub(r"[^\n]", " ", source[opener.start() : end])]
        at = end
    return "".join([*parts, source[at:]])


def render(source: str, variables: dict[str, Any]) -> str:
    """Render one template under the limits of :mod:`promptci.prompts.sandbox`.

    An undefined name raises :class:`jinja2.UndefinedError`; running past a limit
    raises what :func:`promptci.prompts.sandbox.is_limit` recognises.
    """
    template = _compile(source)
    with budgeted():
        return template.render(variables)
