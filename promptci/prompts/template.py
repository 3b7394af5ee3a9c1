"""Jinja2 for prompts: a sandbox, strict undefined variables, and variable discovery."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    """The environment every prompt renders in.

    ``trim_blocks`` and ``lstrip_blocks`` are on, so ``{% if %}`` lines leave no blank
    lines behind in the rendered prompt.
    """
    return SandboxedEnvironment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


@lru_cache(maxsize=1024)
def _compile(source: str) -> jinja2.Template:
    return environment().from_string(source)


def check_syntax(source: str) -> None:
    """Raise :class:`jinja2.TemplateSyntaxError` if ``source`` does not parse."""
    environment().parse(source)


def used_variables(source: str) -> set[str]:
    """Names a template reads from its context, minus the environment's globals."""
    env = environment()
    return set(meta.find_undeclared_variables(env.parse(source))) - set(env.globals)


def render(source: str, variables: dict[str, Any]) -> str:
    """Render one template; an undefined name raises :class:`jinja2.UndefinedError`."""
    return _compile(source).render(variables)
