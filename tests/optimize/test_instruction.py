"""Writing an optimized instruction back: only that text changes."""

from __future__ import annotations

import pytest

from promptci.errors import InputError
from promptci.optimize.instruction import instruction_slot, replace_scalar
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
    slot = instruction_slot(spec)
    assert slot.loc == ("messages", 0, "content") and slot.initial == "Answer with one word."
    loc = slot.loc
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
        has_system = any(m.role == "system" for m in spec.messages or ())
        positions = ("system", "before", "after") if has_system else ("before", "after")
        for position in positions:
            slot = instruction_slot(spec, position)
            new = replace_scalar(text, path.name, slot.loc, slot.compose("Think step by step: then answer."))
            _, updated = parse_prompt(new, path.name)
            fixed = {"messages", "template"}
            assert updated.model_dump(exclude=fixed) == spec.model_dump(exclude=fixed)


def test_a_prompt_without_a_system_message_is_refused() -> None:
    _, spec = parse_prompt("name: x\nmessages: [{role: user, content: hi}]\n", "x.yaml")
    with pytest.raises(InputError, match="no system message to hold the instruction"):
        instruction_slot(spec, "system")
    assert instruction_slot(spec).position == "before"  # the default without a system message


def test_before_and_after_add_a_line_to_the_question() -> None:
    _, spec = parse_prompt(SOURCE, "p.yaml")
    before = instruction_slot(spec, "before")
    assert before.loc == ("messages", 1, "content") and before.initial == ""
    assert before.compose("") == "Ticket: {{ ticket }}\nTeam:\n"  # the empty instruction is the prompt as is
    new = replace_scalar(SOURCE, "p.yaml", before.loc, before.compose("Think first."))
    _, updated = parse_prompt(new, "p.yaml")
    assert updated.messages is not None
    assert updated.messages[1].content == "Think first.\nTicket: {{ ticket }}\nTeam:\n"
    after = instruction_slot(spec, "after")
    assert after.compose("Think first.") == "Ticket: {{ ticket }}\nTeam:\nThink first.\n"
    _, template = parse_prompt("name: t\ntemplate: 'Q: {{ q }}'\nvariables: {q: string}\n", "t.yaml")
    with pytest.raises(InputError, match="template with no system message"):
        instruction_slot(template, "system")


def test_characters_yaml_cannot_hold_raw_are_escaped() -> None:
    value = "Answer\x80 yes\u2028 or no\x07 ✓"
    for source in (SOURCE, "name: t\ntemplate: |\n  Old\nvariables: {}\n"):
        _, spec = parse_prompt(source, "p.yaml")
        slot = instruction_slot(spec, "system" if spec.messages else "before")
        new = replace_scalar(source, "p.yaml", slot.loc, value)
        data = parse_yaml(new, "p.yaml").data
        assert value in (data["messages"][0]["content"] if spec.messages else data["template"])
