"""What a pipeline's steps read from each other, and the problems a file can have on its own.

Every step variable is a Jinja2 template; its references (``inputs.<name>``,
``steps.<id>.output``) are found in the template's syntax tree, never by running it,
so the checks cost nothing and a hostile template does no work.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # lint's warm path imports this module: it loads neither pydantic nor YAML
    from ..diagnostics import Severity
    from ..yamlio import Position, YamlDocument
    from .spec import PipelineSpec

STEP_FIELDS = ("output", "raw")  # steps.<id>.output is the parsed value, .raw the model's text


@dataclass(frozen=True)
class Problem:
    """One finding, located by its path of keys in the file."""

    loc: tuple[str | int, ...]
    code: str
    message: str
    severity: Severity = "error"
    value: bool = False  # point at the value, not the key
    line: int = 1  # inside a template: its line

    def position(self, doc: YamlDocument) -> Position:
        if self.line > 1:
            return doc.template_position(self.loc, self.line)
        return doc.position(self.loc, value=self.value)


@dataclass
class Refs:
    """What one template reads."""

    inputs: set[str] = field(default_factory=set)
    steps: dict[str, set[str]] = field(default_factory=dict)  # step id -> fields read
    unknown: set[str] = field(default_factory=set)  # names other than inputs and steps
    dynamic: set[str] = field(default_factory=set)  # inputs/steps indexed by something not a name


def references(source: str) -> Refs:
    """The names ``source`` reads; a syntax error raises :class:`jinja2.TemplateSyntaxError`."""
    from jinja2 import nodes

    from ..prompts import template

    tree = template.environment().parse(source)
    refs = Refs(unknown=template.used_variables(source) - {"inputs", "steps"})
    parents: dict[int, Any] = {}
    for node in tree.find_all(nodes.Node):
        for child in node.iter_child_nodes():
            parents[id(child)] = node
    for name in tree.find_all(nodes.Name):
        if name.name not in ("inputs", "steps") or name.ctx != "load":
            continue
        key, parent = _member(name, parents.get(id(name)))
        if key is None:
            refs.dynamic.add(name.name)
        elif name.name == "inputs":
            refs.inputs.add(key)
        else:
            step_field, _ = _member(parent, parents.get(id(parent)))
            refs.steps.setdefault(key, set()).add(step_field or "")
    return refs


def _member(node: Any, parent: Any) -> tuple[str | None, Any]:
    """``x.key`` or ``x['key']`` around ``node``: the key and the node that reads it."""
    from jinja2 import nodes

    if isinstance(parent, nodes.Getattr) and parent.node is node:
        return parent.attr, parent
    if (
        isinstance(parent, nodes.Getitem)
        and parent.node is node
        and isinstance(parent.arg, nodes.Const)
        and isinstance(parent.arg.value, str)
    ):
        return parent.arg.value, parent
    return None, parent


def problems(spec: PipelineSpec) -> list[Problem]:
    """Everything wrong with ``spec`` that needs no other file: step ids, references between
    steps (unknown, later, cyclic), unknown inputs, templates that do not parse or are sure
    to run past their limits, and steps whose output nothing uses."""
    import jinja2

    from ..prompts import template

    found: list[Problem] = []
    ids = [s.id for s in spec.steps]
    for i, step in enumerate(spec.steps):
        if step.id in ids[:i]:
            found.append(
                Problem(("steps", i, "id"), "step-id", f"step id '{step.id}' is used by an earlier step", value=True)
            )
    if spec.output not in ids:
        message = f"output names step '{spec.output}', which is not one of: {', '.join(ids)}"
        found.append(Problem(("output",), "unknown-step", message, value=True))
    reads: dict[str, set[str]] = {s.id: set() for s in spec.steps}
    used_inputs: set[str] = set()
    for i, step in enumerate(spec.steps):
        for var, source in step.vars.items():
            loc = ("steps", i, "vars", var)
            try:
                refs = references(source)
            except jinja2.TemplateSyntaxError as exc:
                found.append(Problem(loc, "jinja", f"template syntax: {exc.message}", value=True, line=exc.lineno or 1))
                continue
            for line, message in template.hazards(source):
                found.append(Problem(loc, "template-limit", message, value=True, line=line))
            found += _reference_problems(spec, i, loc, refs)
            used_inputs |= refs.inputs
            reads[step.id] |= set(refs.steps)
    found += _order_problems(spec, reads)
    read_by_any = set().union(*reads.values())
    for i, step in enumerate(spec.steps):
        if step.id != spec.output and step.id not in read_by_any:
            message = f"nothing reads step '{step.id}': no later step uses its output and it is not the output"
            found.append(Problem(("steps", i, "id"), "unused-step", message, value=True))
    for name in sorted(set(spec.inputs) - used_inputs):
        message = f"input '{name}' is declared but no step reads it"
        found.append(Problem(("inputs", name), "unused-input", message, "warning"))
    return found


def _reference_problems(spec: PipelineSpec, i: int, loc: tuple[str | int, ...], refs: Refs) -> list[Problem]:
    found = []
    ids = [s.id for s in spec.steps]
    for name in sorted(refs.unknown):
        message = f"'{name}' is not defined here; read inputs.<name> or steps.<id>.output"
        found.append(Problem(loc, "unknown-name", message, value=True))
    for name in sorted(refs.dynamic):
        message = f"read {name} by a written name ({name}.<name>), so that the pipeline's order can be checked"
        found.append(Problem(loc, "dynamic-reference", message, value=True))
    for name in sorted(refs.inputs - set(spec.inputs)):
        declared = ", ".join(sorted(spec.inputs)) or "none"
        found.append(Problem(loc, "unknown-input", f"no input named '{name}' (inputs: {declared})", value=True))
    for step_id, fields in sorted(refs.steps.items()):
        if step_id not in ids:
            message = f"no step named '{step_id}' (steps: {', '.join(ids)})"
            found.append(Problem(loc, "unknown-step", message, value=True))
            continue
        for bad in sorted(fields - set(STEP_FIELDS)):
            what = f"'{bad}'" if bad else "nothing"
            message = f"steps.{step_id} is read for {what}; a step has {' and '.join(STEP_FIELDS)}"
            found.append(Problem(loc, "step-field", message, value=True))
    return found


def _order_problems(spec: PipelineSpec, reads: dict[str, set[str]]) -> list[Problem]:
    """A step that reads itself, a later step, or a cycle of steps: each at the step's id."""
    found = []
    order = {s.id: i for i, s in enumerate(spec.steps)}
    for i, step in enumerate(spec.steps):
        for target in sorted(t for t in reads.get(step.id, ()) if t in order and order[t] >= i):
            cycle = _cycle(reads, step.id, target)
            if cycle:
                message = f"steps read each other in a cycle: {' -> '.join(cycle)}"
                code = "cycle"
            else:
                message = f"step '{step.id}' reads step '{target}', which runs after it; move '{target}' earlier"
                code = "step-order"
            found.append(Problem(("steps", i, "id"), code, message, value=True))
    return found


def _cycle(reads: dict[str, set[str]], start: str, first: str) -> list[str] | None:
    """A path start -> first -> ... -> start through the reads, if there is one."""
    stack: list[tuple[str, list[str]]] = [(first, [start, first])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        if node == start:
            return path
        if node in seen:
            continue
        seen.add(node)
        stack += [(nxt, [*path, nxt]) for nxt in sorted(reads.get(node, ()))]
    return None


def binding_problems(
    step_id: str, prompt: str, bound: Iterable[str], declared: Mapping[str, bool]
) -> list[tuple[str | None, str, str]]:
    """A step's variables against its prompt's (name -> required): ``(variable, code, message)``
    for each one the step binds that the prompt does not declare, and ``(None, code, message)``
    for each required one it leaves unbound."""
    found: list[tuple[str | None, str, str]] = []
    bound = list(bound)
    for var in bound:
        if var not in declared:
            names = ", ".join(sorted(declared)) or "none"
            message = f"step '{step_id}': prompt '{prompt}' declares no variable '{var}' (declared: {names})"
            found.append((var, "unknown-variable", message))
    for var, required in declared.items():
        if required and var not in bound:
            message = f"step '{step_id}': prompt '{prompt}' needs variable '{var}', which the step leaves unbound"
            found.append((None, "unbound-variable", message))
    return found
