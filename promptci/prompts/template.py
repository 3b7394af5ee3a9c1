"""Jinja2 for prompts: a sandbox under limits, strict undefined variables, and variable discovery."""

from __future__ import annotations

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
    """``(line, message)`` for what the template is sure to run out of its limits on."""
    from .sandbox import hazards as find

    return find(environment().parse(source))


def render(source: str, variables: dict[str, Any]) -> str:
    """Render one template under the limits of :mod:`promptci.prompts.sandbox`.

    An undefined name raises :class:`jinja2.UndefinedError`; running past a limit
    raises what :func:`promptci.prompts.sandbox.is_limit` recognises.
    """
    template = _compile(source)
    with budgeted():
        return template.render(variables)
