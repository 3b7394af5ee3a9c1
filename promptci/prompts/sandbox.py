"""Jinja2 under limits: templates from strangers' pull requests render in bounded time and memory.

Jinja's own sandbox stops attribute escapes but not work: ``{{ 'a' * 10**10 }}``,
nested ``range`` loops or a macro that calls itself run until the machine gives out.
Here every render gets a :class:`Budget`. The template's tree is rewritten so that
each loop iteration, string join and emitted value passes a check, and the
sandbox's hooks (calls, filters, ``*``, ``**``, ``+``, ``%``) check sizes *before*
they build anything large. Running out is a :class:`LimitError`.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment

MAX_CHARS = 1_000_000  # the longest string or collection a template may build, and its whole output
MAX_STEPS = 200_000  # loop iterations plus calls in one render
MAX_SECONDS = 2.0  # wall time of one render
MAX_INT_BITS = 4096  # integers past this come only from a runaway ``**`` or ``*``

_LOOP = "promptci-loop"
_CHECK = "promptci-check"
_EMIT = "promptci-emit"
_BIG_NUMBER = re.compile(r"\d{7,}")  # a width or precision of a million or more in a format string


class LimitError(Exception):
    """A render went past one of the limits above."""


@dataclass
class Budget:
    """What one render may still spend."""

    steps: int = MAX_STEPS
    output: int = MAX_CHARS
    deadline: float = 0.0

    def step(self) -> None:
        self.steps -= 1
        if self.steps < 0:
            raise LimitError(f"template did more than {MAX_STEPS:,} loop iterations and calls")
        if time.monotonic() > self.deadline:
            raise LimitError(f"template took longer than {MAX_SECONDS:g} s to render")

    def emit(self, size: int) -> None:
        self.output -= size
        if self.output < 0:
            raise LimitError(f"template output is longer than {MAX_CHARS:,} characters")


_budget: ContextVar[Budget | None] = ContextVar("promptci_render_budget", default=None)


@contextmanager
def budgeted() -> Iterator[Budget]:
    """Give the renders inside the block one fresh budget."""
    budget = Budget(deadline=time.monotonic() + MAX_SECONDS)
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)


def _step() -> None:
    budget = _budget.get()
    if budget is not None:
        budget.step()


def _size(value: Any) -> int:
    if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset)):
        return len(value)
    return 0


def _checked(value: Any) -> Any:
    if _size(value) > MAX_CHARS:
        raise LimitError(f"template built a value of over {MAX_CHARS:,} items or characters")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise LimitError("template built an integer too large to print")
    return value


def _check_args(args: Iterable[Any]) -> None:
    """Refuse arguments that would make a call allocate past the limit (``center(10**9)``)."""
    for arg in args:
        if isinstance(arg, int) and not isinstance(arg, bool) and abs(arg) > MAX_CHARS:
            raise LimitError(f"template passed {arg} as an argument; the limit is {MAX_CHARS:,}")
        if isinstance(arg, str) and _BIG_NUMBER.search(arg) and ("%" in arg or "{" in arg):
            raise LimitError("template used a format width or precision of a million or more")


def _check_growth(name: str, subject: Any, args: Sequence[Any]) -> None:
    """Bound what can grow far past its inputs: ``replace``, ``join`` and format strings.

    ``subject`` is the string a method is called on, or a filter's first argument;
    ``args`` are the rest.
    """
    if not isinstance(subject, str):
        return
    if name == "replace" and len(args) >= 2:
        if _size(subject) * max(_size(args[1]), 1) > MAX_CHARS and _size(args[1]) > _size(args[0]):
            raise LimitError(f"template replace() could build over {MAX_CHARS:,} characters")
    elif name == "join" and isinstance(args[0] if args else None, (list, tuple)):
        items = args[0]
        total = sum(_size(i) if isinstance(i, str) else 8 for i in items) + _size(subject) * len(items)
        if total > MAX_CHARS:
            raise LimitError(f"template join() would build over {MAX_CHARS:,} characters")


def _binop_precheck(operator: str, left: Any, right: Any) -> None:
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(times, int) and _size(seq) * max(times, 0) > MAX_CHARS:
                raise LimitError(f"template multiplies a sequence past {MAX_CHARS:,} items")
        if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise LimitError("template multiplies integers too large to print")
    elif operator == "**" and isinstance(left, int) and isinstance(right, int):
        if right > 0 and max(left.bit_length(), 1) * right > MAX_INT_BITS and abs(left) > 1:
            raise LimitError("template raises an integer to a power too large to print")
    elif operator == "+" and _size(left) + _size(right) > MAX_CHARS:
        raise LimitError(f"template built a value of over {MAX_CHARS:,} items or characters")
    elif operator == "%" and isinstance(left, str):
        _check_args([left])


_BINOPS: dict[str, Callable[[Any, Any], Any]] = {
    "*": lambda a, b: a * b,
    "**": lambda a, b: a**b,
    "+": lambda a, b: a + b,
    "%": lambda a, b: a % b,
}


def _limited_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    passes_context = hasattr(func, "jinja_pass_arg")

    @functools.wraps(func)  # keeps jinja_pass_arg, so context/environment are still passed
    def filter_(*args: Any, **kwargs: Any) -> Any:
        _step()
        own = args[1:] if passes_context else args
        _check_args([*own, *kwargs.values()])
        if own:
            if name == "join":  # value|join(sep): the separator is the joining string
                sep = own[1] if len(own) > 1 else kwargs.get("d", "")
                _check_growth("join", sep, [list(own[0]) if isinstance(own[0], (list, tuple)) else own[0]])
            else:
                _check_growth(name, own[0], own[1:])
        return _checked(func(*args, **kwargs))

    return filter_


# The hooks take the context so that Jinja never folds them into constants at compile time.


@jinja2.pass_context
def _loop(context: jinja2.runtime.Context, iterable: Any) -> Iterator[Any]:
    for item in iterable:
        _step()
        yield item


@jinja2.pass_context
def _check_hook(context: jinja2.runtime.Context, value: Any) -> Any:
    return _checked(value)


@jinja2.pass_context
def _emit(context: jinja2.runtime.Context, value: Any) -> Any:
    budget = _budget.get()
    if budget is not None:
        budget.emit(len(value) if isinstance(value, str) else len(str(value)) if _size(value) else 8)
    return value


class LimitedEnvironment(SandboxedEnvironment):
    """A :class:`SandboxedEnvironment` whose renders stop at the limits of this module."""

    intercepted_binops = frozenset(_BINOPS)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals.pop("lipsum", None)  # n paragraphs of filler, unbounded, and no use in a prompt
        self.filters = {name: _limited_filter(name, f) for name, f in self.filters.items()}
        # The hooks the rewritten tree calls: as filters, which Jinja calls directly, not
        # through the sandbox's checks, and which no template can name (not identifiers).
        self.filters.update({_LOOP: _loop, _CHECK: _check_hook, _EMIT: _emit})

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        _binop_precheck(operator, left, right)
        return _checked(_BINOPS[operator](left, right))

    def call(__self, __context: jinja2.runtime.Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _step()
        _check_args([*args, *kwargs.values()])
        _check_growth(getattr(__obj, "__name__", ""), getattr(__obj, "__self__", None), args)
        return _checked(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        template = value.__self__

        def format_(*args: Any, **kwargs: Any) -> str:
            _check_args([template])
            return wrapped(*args, **kwargs)

        return format_

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        _rewrite(tree)
        return tree


def _wrap(hook: str, node: nodes.Node) -> nodes.Filter:
    return nodes.Filter(node, hook, [], [], None, None, lineno=node.lineno)


def _rewrite(tree: nodes.Node) -> None:
    """Route every loop's items, string join and emitted value through the budget."""
    for node in list(tree.find_all(nodes.Node)):
        if isinstance(node, nodes.For):
            node.iter = _wrap(_LOOP, node.iter)
        elif isinstance(node, nodes.Output):
            node.nodes = [_wrap(_EMIT, n) for n in node.nodes]
        for field in node.fields:
            value = getattr(node, field, None)
            if isinstance(value, nodes.Concat):
                setattr(node, field, _wrap(_CHECK, value))
            elif isinstance(value, list):
                setattr(node, field, [_wrap(_CHECK, v) if isinstance(v, nodes.Concat) else v for v in value])


def hazards(tree: nodes.Template) -> list[tuple[int, str]]:
    """What a parsed template is sure to run out of its limits on, seen without rendering it:
    ``(line, message)`` for a macro that calls itself, a ``range`` past Jinja's limit, and
    constant arithmetic past :data:`MAX_CHARS`."""
    from jinja2.sandbox import MAX_RANGE

    found: list[tuple[int, str]] = []
    for node in tree.find_all((nodes.Include, nodes.Extends, nodes.Import, nodes.FromImport)):
        tag = {nodes.Include: "include", nodes.Extends: "extends", nodes.Import: "import"}.get(type(node), "from")
        found.append((node.lineno, f"{{% {tag} %}} needs other templates; a prompt renders on its own"))
    for macro in tree.find_all(nodes.Macro):
        for call in macro.find_all(nodes.Call):
            if isinstance(call.node, nodes.Name) and call.node.name == macro.name:
                found.append((call.lineno, f"macro '{macro.name}' calls itself; renders stop at the recursion limit"))
    for call in tree.find_all(nodes.Call):
        if isinstance(call.node, nodes.Name) and call.node.name == "range" and 1 <= len(call.args) <= 3:
            try:
                bounds = [_constant(a) for a in call.args]
                too_long = len(range(*bounds)) > MAX_RANGE
            except (_NotConstant, LimitError, TypeError, ValueError, OverflowError):
                continue
            if too_long:
                found.append((call.lineno, f"range() of more than {MAX_RANGE:,} items always fails"))
    for expr in tree.find_all(nodes.BinExpr):
        try:
            _constant(expr)
        except LimitError as exc:
            found.append((expr.lineno, str(exc)))
        except (_NotConstant, TypeError, ValueError, ArithmeticError):
            continue
    return sorted(set(found))


class _NotConstant(Exception):
    pass


def _constant(node: nodes.Node) -> Any:
    """The value of a constant expression, built under the same checks as at render time."""
    if isinstance(node, nodes.Const):
        return node.value
    if isinstance(node, nodes.BinExpr) and node.operator in _BINOPS:
        left, right = _constant(node.left), _constant(node.right)
        _binop_precheck(node.operator, left, right)
        return _BINOPS[node.operator](left, right)
    raise _NotConstant


def describe(exc: BaseException) -> str:
    """A one-line reading of a render that ran out of its limits."""
    if isinstance(exc, RecursionError):
        return "template recursion is too deep (does a macro call itself?)"
    if isinstance(exc, MemoryError):
        return "template ran out of memory"
    if isinstance(exc, OverflowError):
        return f"template number or range is too large: {exc}"
    return str(exc)


def is_limit(exc: BaseException) -> bool:
    """Whether ``exc`` is a render stopped by a limit rather than a template error."""
    return isinstance(exc, (LimitError, RecursionError, MemoryError, OverflowError))
