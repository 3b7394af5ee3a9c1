"""What changed between two structured outputs of a case, as compare, the PR comment and JUnit say it."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from promptci.compare.outputs import change
from promptci.providers.replies import Call, encode


def calls(*pairs: tuple[str, str]) -> str:
    return encode(None, [Call(name, raw) for name, raw in pairs])


def test_a_calls_arguments_are_diffed_by_name() -> None:
    before = calls(("set_timer", '{"minutes": 5, "label": "tea"}'))
    after = calls(("set_timer", '{"minutes": 50, "sound": true}'))
    assert change(before, after) == "set_timer: minutes 5 → 50, -label, +sound=True"
    assert change(before, before) is None


def test_a_call_that_turns_invalid_or_changes_tool_says_so() -> None:
    valid = calls(("set_timer", '{"minutes": 5}'))
    assert change(valid, calls(("set_timer", '{"minutes": '))) == (
        "set_timer: arguments valid → invalid (its arguments are not valid JSON)"
    )
    assert change(calls(("set_timer", "{")), valid) == "set_timer: arguments invalid → valid"
    assert change(valid, calls(("get_weather", '{"city": "Oslo"}'))) == "set_timer → get_weather"
    assert change(valid, "Sure, five minutes.") == "set_timer → no call"
    assert change("Which timer?", valid) == "no call → set_timer"
    two = calls(("set_timer", '{"minutes": 5}'), ("get_weather", '{"city": "Oslo"}'))
    assert change(valid, two) == "+get_weather"


def test_json_objects_are_diffed_field_by_field_and_text_is_not() -> None:
    assert change('{"city": "Oslo", "zip": "0150"}', '{"city": "Bergen", "zip": "0150", "country": "NO"}') == (
        "city 'Oslo' → 'Bergen', +country='NO'"
    )
    assert change('{"total": 30}', '{"total": "30"}') == "total 30 → '30'"  # a type change is a change
    assert change("positive", "negative") is None
    assert change('{"a": 1}', "not json") is None


@given(st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=12), st.data())
def test_the_diff_is_one_line_and_bounded(old: dict[str, object], data: st.DataObject) -> None:
    new = data.draw(st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=12))
    found = change(json.dumps(old), json.dumps(new))
    assert (found is None) == (old == new)
    if found is not None:  # one line, whatever the keys hold, and at most MAX_PARTS changes listed
        assert "\n" not in found and len(found) < 1000
