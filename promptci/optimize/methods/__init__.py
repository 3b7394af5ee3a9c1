"""Optimizer methods, one module each, found by name.

A method is a subclass of :class:`promptci.optimize.engine.Method` that declares its
``name``, a one-line ``description``, a pydantic ``Config`` holding its own knobs
(defaults, bounds, help) and its ``default_steps``, and registers itself with
:func:`register`. The built-in methods are the modules of this package; other
distributions add theirs through the ``promptci.methods`` entry-point group, pointing at
the class::

    [project.entry-points."promptci.methods"]
    beam = "promptci_beam:Beam"

:func:`names` lists both without importing any method, so ``promptci optimize --help``
stays fast; a method's module is imported when it is used.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from ...errors import InputError
from ...plugins import entry_points

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from ..engine import Method

GROUP = "promptci.methods"
DEFAULT = "gpo"

_REGISTERED: dict[str, type[Method[Any]]] = {}


def register(cls: type[Method[Any]]) -> type[Method[Any]]:
    """Class decorator: make ``cls`` the method called ``cls.name``."""
    _REGISTERED[cls.name] = cls
    return cls


def builtin_names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


@cache
def _entry_points() -> dict[str, EntryPoint]:
    return entry_points(GROUP)


def names() -> list[str]:
    """Every method's name, built-in and installed, without importing any of them."""
    return sorted({*builtin_names(), *_entry_points()})


class OptionError(InputError):
    """A method option that does not validate; ``key`` names it (None: the method itself)."""

    def __init__(self, message: str, key: str | None, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.key = key


class PluginError(OptionError):
    """An installed method that cannot be loaded."""


_BROKEN: dict[str, str] = {}


def get(name: str) -> type[Method[Any]]:
    """The method class called ``name``, imported (or loaded from its entry point) on first use."""
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name in builtin_names():
        importlib.import_module(f"{__name__}.{name}")
    elif name in _entry_points():
        loaded = _load(_entry_points()[name])
        if isinstance(loaded, type):
            _REGISTERED.setdefault(name, loaded)
    else:
        raise OptionError(f"unknown method '{name}'", None, hint=f"one of: {', '.join(names())}")
    found = _REGISTERED.get(name)
    if found is None:
        raise InputError(f"method '{name}' did not register a class named '{name}'")
    return found


def _load(point: EntryPoint) -> Any:
    """An installed plugin's class. Whatever its import does, a failure is this one method's
    error (:class:`PluginError`), remembered, never the end of the command."""
    if point.name in _BROKEN:
        raise PluginError(_BROKEN[point.name], None)
    try:
        return point.load()
    except (Exception, SystemExit) as exc:  # a plugin's import may do anything, exit included
        _BROKEN[point.name] = (
            f"method plugin '{point.name}' ({point.value}) failed to load: {type(exc).__name__}: {exc}"
        )
        raise PluginError(_BROKEN[point.name], None) from None


def loadable() -> tuple[list[str], list[str]]:
    """The methods that load, and a line for each one that does not (a broken plugin)."""
    found, broken = [], []
    for name in names():
        try:
            get(name)
        except PluginError as exc:
            broken.append(exc.message)
            continue
        found.append(name)
    return found, broken


def configure(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` validated by method ``name``'s config, with its defaults filled in."""
    from pydantic import ValidationError

    model = get(name).Config
    try:
        return model.model_validate(dict(options)).model_dump(mode="json")
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or None
        known = ", ".join(model.model_fields) or "none"
        where = f"{name}.{key}" if key else name
        raise OptionError(f"{where}: {err['msg']}", key, hint=f"{name} options: {known}") from None


def parse_sets(method: str, items: Sequence[str]) -> dict[str, Any]:
    """``--set`` items, ``KNOB=VALUE`` or ``METHOD.KNOB=VALUE``, as options for ``method``.

    Values are read as YAML: ``40``, ``0.5``, ``true``, ``a phrase``, ``[a, b]``.
    """
    from ...yamlio import parse_yaml

    options: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"bad --set '{item}'", hint="write METHOD.KNOB=VALUE, e.g. greater.topk=40")
        prefix, dot, knob = key.strip().rpartition(".")
        if dot and prefix != method:
            raise InputError(
                f"--set {item}: an option of '{prefix}', but the method is '{method}'",
                hint=f"pass --method {prefix}, or set {method}.{knob}",
            )
        try:  # read under the same limits as every YAML file: no alias bombs, no deep nesting
            value = parse_yaml(raw, f"--set {key.strip()}").data if raw.strip() else ""
        except InputError as exc:
            if "refusing" in exc.message:  # a bomb, not a plain string that is not YAML
                raise InputError(f"--set {key.strip()}: {exc.message}") from None
            value = raw
        options[knob] = value
    return options


def describe(name: str) -> str:
    """A method's description and options, with defaults and help, for ``--list-methods``."""
    from pydantic import BaseModel

    cls = get(name)
    lines = [f"{name}: {cls.description}", f"  default steps: {cls.steps_help}"]
    for knob, field in cls.Config.model_fields.items():
        value = None if field.is_required() else field.get_default(call_default_factory=True)
        if isinstance(value, BaseModel):  # nested options, as YAML writes them: {knob: value, ...}
            default = " (default {" + ", ".join(f"{k}: {v}" for k, v in value.model_dump().items()) + "})"
        else:
            default = "" if value is None else f" (default {value!r})"
        lines.append(f"  --set {name}.{knob}=…  {field.description or ''}{default}")
    return "\n".join(lines)
