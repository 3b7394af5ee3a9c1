"""Lint reads an optimize: block without options without importing its method: every built-in
method runs on its defaults, which this checks by importing each one."""

from __future__ import annotations

from promptci.lint.optimize import method_problem
from promptci.optimize import methods


def test_every_built_in_method_takes_its_defaults() -> None:
    for name in methods.builtin_names():
        assert methods.configure(name, {})
        assert method_problem({"method": name}) is None
    problem = method_problem({"method": "no-such-method"})
    assert problem is not None and problem[0] == ("method",) and "unknown method 'no-such-method'" in problem[1]
    problem = method_problem({"method": "gpo", "options": {"no_such_knob": 1}})
    assert problem is not None and problem[0] == ("options", "no_such_knob")
