"""Writing an optimized instruction back: only that text changes."""

from __future__ import annotations

import pytest

from promptci.errors import InputError
from promptci.optimize.instruction import instruction_location, replace_scalar
from promptci.prompts.registry import parse_prompt
from promptci.yamlio import parse_yaml

from ..conftest import REPO_ROOT

SOURCE = """\
# Owned by the support team. Do not remove this comment.
name: triage
description: Route a ticket.   # trailing comment
messages:
  - role: system
    content: Answer with one word.
  - role: user
    content: |
      Ticket: {{ ticket }}
      Team:
variables:
  ticket: {type: string}
tags: [support]
"""


def test_only_the_instruction_changes() -> None:
    _, spec = parse_prompt(SOURCE, "p.yaml")
    loc = instruction_location(spec)
    assert loc == ("messages", 0, "content")
    new = replace_scalar(SOURCE, "p.yaml", loc, 'Reply with the team name: "billing" or "tech".')
    assert new.replace('"Reply with the team name: \\"billing\\" or \\"tech\\"."', "Answer with one word.") == SOURCE
    _, updated = parse_prompt(new, "p.yaml")
    assert updated.messages is not None
    assert updated.messages[0].content == 'Reply with the team name: "billing" or "tech".'
    assert updated.model_dump(exclude={"messages"}) == spec.model_dump(exclude={"messages"})


def test_block_scalars_stay_blocks() -> None:
    source = "name: t\ntemplate: |\n  Old line one\n  Old line two\nvariables: {}\n"
    new = replace_scalar(source, "t.yaml", ("template",), "New one\nNew two")
    assert new == "name: t\ntemplate: |\n  New one\n  New two\nvariables: {}\n"
    assert parse_yaml(new, "t.yaml").data["template"] == "New one\nNew two\n"


def test_every_dogfood_prompt_round_trips() -> None:
    for path in sorted((REPO_ROOT / "prompts").glob("*.yaml")):
        text = path.read_text()
        _, spec = parse_prompt(text, path.name)
        loc = instruction_location(spec)
        new = replace_scalar(text, path.name, loc, "Think step by step: then answer.")
        _, updated = parse_prompt(new, path.name)
        assert updated.model_dump(exclude={"messages", "template"}) == spec.model_dump(exclude={"messages", "template"})


def test_a_prompt_without_a_system_message_is_refused() -> None:
    _, spec = parse_prompt("name: x\nmessages: [{role: user, content: hi}]\n", "x.yaml")
    with pytest.raises(InputError, match="no system message to optimize"):
        instruction_location(spec)
