"""One step of one case: its variables rendered from what ran before, and its output read.

Step variables are Jinja2 templates rendered in the same sandbox, under the same
limits, as prompts. What a template renders is text; a step prompt that declares a
number, a boolean, a list or an object gets that text read as one (JSON for lists and
objects: write ``{{ steps.x.output | tojson }}``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import PromptciError, RenderError
from ..patterns import compile_user
from ..prompts.prompt import Prompt, coerce
from ..redact import clip
from ..yamlio import nesting_depth
from .spec import Parse, Step

MAX_PARSED_TEXT = 100_000  # characters of an output that a parse reads
MAX_JSON_STARTS = 50  # brackets a json parse tries to read a value from
MAX_JSON_DEPTH = 64  # levels a parsed value may nest


class StepError(Exception):
    """A step that could not be rendered (the case ends there, an error) or whose answer its parse
    rule could not read (the case ends there too, scored as a wrong answer)."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage = stage  # render or parse


def context(inputs: dict[str, Any], done: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    """What step templates read: ``inputs.<name>``, ``steps.<id>.output`` (the parsed value)
    and ``steps.<id>.raw`` (the model's text), for the steps that have run."""
    return {"inputs": inputs, "steps": {k: {"raw": raw, "output": parsed} for k, (raw, parsed) in done.items()}}


def messages(step: Step, prompt: Prompt, scope: dict[str, Any]) -> list[dict[str, str]]:
    """Step ``step``'s chat messages, its variables rendered in ``scope``."""
    import jinja2

    from ..prompts import sandbox, template

    values: dict[str, Any] = {}
    for name, source in step.vars.items():
        try:
            text = template.render(source, scope)
        except jinja2.UndefinedError as exc:
            raise StepError("render", f"{name}: {exc.message}") from None
        except jinja2.TemplateError as exc:
            raise StepError("render", f"{name}: {exc}") from None
        except Exception as exc:
            if sandbox.is_limit(exc):
                raise StepError("render", f"{name}: {sandbox.describe(exc)}") from None
            raise
        declared = prompt.variables.get(name)
        try:
            values[name] = coerce(declared, text, name) if declared is not None else text
        except RenderError as exc:
            raise StepError("render", exc.message) from None
    try:
        return prompt.render(**values)
    except PromptciError as exc:
        raise StepError("render", exc.message) from None


def read(parse: Parse | None, text: str) -> Any:
    """What ``parse`` takes from a step's output; a parse that finds nothing raises :class:`StepError`."""
    if parse is None:
        return text
    if parse.strip:
        return text.strip()
    text = text[:MAX_PARSED_TEXT]
    if parse.regex is not None:
        match = compile_user(parse.regex).search(text)
        if match is None:
            raise StepError("parse", f"no match for /{parse.regex}/ in {clip(text, 80)!r}")
        found = match.group(1) if compile_user(parse.regex).groups else match.group(0)
        if found is None:
            raise StepError("parse", f"/{parse.regex}/ matched, but its first group is empty")
        return found
    assert parse.json_ is not None
    value = _first_json(text)
    if nesting_depth(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:  # later steps, scorers and the store all walk it
        raise StepError("parse", f"the JSON value nests deeper than {MAX_JSON_DEPTH} levels")
    return _json_path(value, parse.json_)


def as_text(value: Any) -> str:
    """A parsed value as scorers and the ``parsed`` column see it: text as it is, else JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _first_json(text: str) -> Any:
    decoder = json.JSONDecoder()
    stripped = text.strip()
    try:
        return json.loads(stripped)
    except (ValueError, RecursionError):  # nesting deeper than Python recurses is no value either
        pass
    for tried, match in enumerate(re.finditer(r"[\[{]", text)):
        if tried == MAX_JSON_STARTS:
            break
        try:
            return decoder.raw_decode(text, match.start())[0]
        except (ValueError, RecursionError):
            continue
    raise StepError("parse", f"no JSON value in {clip(text, 80)!r}")


def _json_path(value: Any, path: str) -> Any:
    for key in [k for k in path.split(".") if k]:
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.lstrip("-").isdigit() and -len(value) <= int(key) < len(value):
            value = value[int(key)]
        else:
            raise StepError("parse", f"the JSON has no '{key}' on the path '{path}'")
    return value
