"""A loaded prompt: its spec, where it came from, and rendering with checked variables."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ..errors import InputError, PromptciError, RenderError

if TYPE_CHECKING:  # pydantic is not needed to render: the runtime builds prompts without it
    from ..outcomes import Release
    from .images import Images
    from .spec import PromptSpec, Variable

_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (dict,),
    "messages": (list, tuple),
    "image": (str,),  # a repository path or an https URL
}
VARIABLE_TYPES = (*_PY_TYPES, "any")  # what a variable's ``type`` may be


@dataclass(frozen=True)
class PromptVersion:
    """A version's identity: the content hash plus the commit that last changed the file.

    ``commit`` is None for a working-tree file with uncommitted changes (``dirty``)
    or outside a git repository.
    """

    content_hash: str
    commit: str | None
    dirty: bool

    @property
    def short(self) -> str:
        return self.content_hash[:12]


@dataclass(frozen=True)
class Prompt:
    """A prompt from the registry, as ``promptci.load`` returns it.

    ``rev`` is the commit it was read from, or None for the working tree. ``release`` is set when
    it was loaded by label, for :meth:`record`.
    """

    spec: PromptSpec
    path: str
    source: str
    content_hash: str
    rev: str | None = None
    _commit_lookup: Callable[[], PromptVersion] | None = field(default=None, repr=False, compare=False)
    release: Release | None = field(default=None, compare=False)
    images: Images | None = field(default=None, repr=False, compare=False)  # how its repository images are read

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def variables(self) -> Mapping[str, Variable]:
        return self.spec.variables

    @cached_property
    def version(self) -> PromptVersion:
        """Content hash and last commit; asks git only when first read."""
        if self._commit_lookup is None:
            return PromptVersion(self.content_hash, None, True)
        return self._commit_lookup()

    def record(self, outcome: float | bool, **metadata: Any) -> None:
        """Append what happened after this version was used (a number, or a bool for pass/fail) to
        the outcome log, for ``promptci ab report``. Only a prompt loaded by label can record."""
        from ..outcomes import record

        if self.release is None:
            raise PromptciError(f"prompt '{self.name}' was not loaded by label, so its outcomes compare nothing")
        record(self.release, self.name, self.content_hash, self.version.commit, outcome, metadata)

    def bind(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``variables`` against the declaration and fill in defaults."""
        return bind(f"prompt '{self.name}'", self.spec.variables, variables)

    def render(self, **variables: Any) -> list[dict[str, str]]:
        """The chat messages with variables filled in, as ``[{"role": …, "content": …}]``.

        A ``template`` prompt renders to one user message.
        """
        return self._messages(self.bind(variables))

    def _messages(self, bound: dict[str, Any]) -> list[dict[str, Any]]:
        if self.spec.template is not None:
            return [{"role": "user", "content": self._render(("template",), self.spec.template, bound)}]
        assert self.spec.messages is not None
        messages: list[dict[str, Any]] = []
        for i, m in enumerate(self.spec.messages):
            if m.history is not None:  # the case's turns, as data: never rendered as templates
                messages += [dict(turn) for turn in bound[m.history] or ()]
                continue
            content = m.content
            message: dict[str, Any] = {
                "role": m.role,
                "content": self._render(("messages", i, "content"), content, bound)
                if isinstance(content, str)
                else [self._part(i, j, part, bound) for j, part in enumerate(content)],
            }
            if m.tool_calls:
                message["tool_calls"] = [called(c) for c in m.tool_calls]
            if m.tool_call_id is not None:
                message["tool_call_id"] = m.tool_call_id
            messages.append(message)
        if self.spec.examples is not None:
            messages = self._with_examples(messages)
        return messages

    def _with_examples(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``messages`` with the examples chosen for this case before the final user turn."""
        from . import examples

        spec = self.spec.examples
        assert spec is not None
        final = max(i for i, m in enumerate(messages) if m["role"] == "user")
        content = messages[final]["content"]
        query = content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)
        questions, answers, index = self._pool
        pairs: list[dict[str, Any]] = []
        for i in examples.choose(questions, index, query, spec.k, spec.select):
            pairs += [{"role": "user", "content": questions[i]}, {"role": "assistant", "content": answers[i]}]
        return [*messages[:final], *pairs, *messages[final:]]

    @cached_property
    def _pool(self) -> tuple[list[str], list[str], Any]:
        """The example pool's questions, answers and BM25 index, read once per prompt version."""
        import jinja2

        from . import examples, sandbox, template
        from .images import ImageError, Images

        spec = self.spec.examples
        assert spec is not None and self.spec.messages is not None
        try:
            data = (self.images or Images()).read_file(spec.from_, examples.MAX_POOL_BYTES, "example pool")
            rows = examples.read_pool(data, spec.from_)
        except (examples.PoolError, ImageError) as exc:
            raise RenderError(f"prompt '{self.name}' ({self.path}): {exc}") from None
        final = max(i for i, m in enumerate(self.spec.messages) if m.role == "user")
        source = self.spec.messages[final].content
        if not isinstance(source, str):
            source = " ".join(p.text for p in source if p.type == "text")

        def render(values: dict[str, Any]) -> str | None:
            try:
                return template.render(source, values)
            except (jinja2.TemplateError, ArithmeticError, LookupError, TypeError, ValueError):
                return None  # a row the question cannot be written from is left out
            except Exception as exc:
                if sandbox.is_limit(exc):
                    return None
                raise

        questions, answers = examples.demonstrations(spec, rows, render)
        return questions, answers, examples.Index.of(questions)

    def _part(self, i: int, j: int, part: Any, bound: dict[str, Any]) -> dict[str, Any]:
        """One content part in OpenAI's shape: a text part rendered, an image part read and checked."""
        from .images import ImageError, Images, is_template

        if part.type == "text":
            return {"type": "text", "text": self._render(("messages", i, "content", j, "text"), part.text, bound)}
        ref = part.image
        if is_template(ref):
            ref = self._render(("messages", i, "content", j, "image"), ref, bound)
        try:
            return (self.images or Images()).part(ref, part.detail)
        except ImageError as exc:
            raise RenderError(f"prompt '{self.name}' ({self.path}): {exc}") from None

    def openai_kwargs(self, **variables: Any) -> dict[str, Any]:
        """The request pieces as OpenAI's chat completions take them: ``messages``, and ``tools``
        (descriptions rendered), ``tool_choice`` and ``response_format`` where the prompt has them.
        ``client.chat.completions.create(model=…, **prompt.openai_kwargs(…))``."""
        from . import tools

        bound = self.bind(variables)
        kwargs: dict[str, Any] = {"messages": self._messages(bound)}
        spec_tools = list(self.spec.tools or ())
        if spec_tools:
            descriptions = [
                self._render(("tools", i, "function", "description"), tools.description(t), bound)
                for i, t in enumerate(spec_tools)
            ]
            kwargs["tools"] = tools.openai_tools(spec_tools, descriptions)
        if self.spec.tool_choice is not None:
            kwargs["tool_choice"] = tools.openai_choice(self.spec.tool_choice)
        if (fmt := tools.openai_format(self.spec.response_format)) is not None:
            kwargs["response_format"] = fmt
        return kwargs

    def anthropic_kwargs(self, **variables: Any) -> dict[str, Any]:
        """The request pieces as Anthropic's Messages API takes them: ``system`` apart, ``messages``,
        ``tools`` with ``input_schema`` and ``tool_choice``; a JSON-schema response format becomes a
        tool the model must call. ``client.messages.create(model=…, max_tokens=…, **…)``."""
        from ..anthropic_shape import anthropic_request

        k = self.openai_kwargs(**variables)
        return anthropic_request(k["messages"], k.get("tools", []), k.get("tool_choice"), k.get("response_format"))

    def _render(self, loc: tuple[str | int, ...], source: str, bound: dict[str, Any]) -> str:
        import jinja2

        from . import sandbox, template

        try:
            return template.render(source, bound)
        except jinja2.UndefinedError as exc:
            raise RenderError(f"prompt '{self.name}' ({self.path}): {exc.message}") from None
        except jinja2.TemplateSyntaxError as exc:
            line, col = self._template_position(loc, exc.lineno)
            raise InputError(f"template error: {exc.message}", path=self.path, line=line, col=col) from None
        except jinja2.TemplateError as exc:
            raise InputError(f"template error: {exc}", path=self.path) from None
        except Exception as exc:
            if sandbox.is_limit(exc):
                raise RenderError(f"prompt '{self.name}' ({self.path}): {sandbox.describe(exc)}") from None
            if isinstance(exc, (SyntaxError, TypeError, ValueError, LookupError, AttributeError, ArithmeticError)):
                # what a template does with the values it is given, or cannot compile: this render fails, not promptci
                raise RenderError(f"prompt '{self.name}' ({self.path}): {type(exc).__name__}: {exc}") from None
            raise

    def _template_position(self, loc: tuple[str | int, ...], line: int) -> tuple[int | None, int | None]:
        from ..yamlio import parse_yaml

        try:
            pos = parse_yaml(self.source, self.path).template_position(loc, line)
        except InputError:
            return None, None
        return pos.line, pos.col


def bind(owner: str, declared: Mapping[str, Variable], variables: Mapping[str, Any]) -> dict[str, Any]:
    """``variables`` checked against ``declared`` (what ``owner``, such as "prompt 'x'", takes),
    with defaults filled in; a missing, undeclared or mistyped one raises :class:`RenderError`."""
    unknown = sorted(set(variables) - set(declared))
    if unknown:
        names = ", ".join(sorted(declared)) or "none"
        raise RenderError(f"{owner}: undeclared variable '{unknown[0]}' (declared: {names})")
    bound: dict[str, Any] = {}
    for name, var in declared.items():
        if name in variables:
            bound[name] = _check_type(owner, name, var, variables[name])
        elif var.required:
            what = f" — {var.description}" if var.description else ""
            raise RenderError(f"{owner}: missing required variable '{name}' ({var.type}){what}")
        else:
            bound[name] = var.default
    return bound


def content_hash(data: Any) -> str:
    """The sha256 of a prompt's canonical JSON: comments and layout do not change it, nor do
    its ``optimize:`` settings, which say how to improve the prompt, not what it is."""
    from ..yamlio import canonical_json

    if isinstance(data, dict) and "optimize" in data:
        data = {k: v for k, v in data.items() if k != "optimize"}
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()


def _check_type(owner: str, name: str, var: Variable, value: Any) -> Any:
    if var.type == "any" or (value is None and not var.required):
        return value
    wanted = _PY_TYPES[var.type]
    is_bool = isinstance(value, bool)
    if not isinstance(value, wanted) or (is_bool and var.type in ("integer", "number")):
        raise RenderError(f"{owner}: variable '{name}' should be {var.type}, got {type(value).__name__} {value!r:.40}")
    return history_turns(owner, name, value) if var.type == "messages" else value


MAX_HISTORY_TURNS = 500  # turns one case's history may hold
HISTORY_ROLES = ("user", "assistant", "tool")  # a case's turns: never a system turn


def history_turns(owner: str, name: str, value: Any) -> list[dict[str, Any]]:
    """A ``messages`` variable's turns, checked: each a user, assistant or tool turn with text
    content (an assistant's may carry ``tool_calls``, a tool's names its ``tool_call_id``), at
    most :data:`MAX_HISTORY_TURNS`. A system turn is refused: a case's data never speaks as
    the system."""
    if len(value) > MAX_HISTORY_TURNS:
        raise RenderError(f"{owner}: '{name}' holds {len(value):,} turns, more than {MAX_HISTORY_TURNS}")
    turns = []
    for i, turn in enumerate(value, 1):
        where = f"{owner}: turn {i} of '{name}'"
        if not isinstance(turn, Mapping):
            raise RenderError(f"{where} is not a mapping with role and content")
        role, content = turn.get("role"), turn.get("content", "")
        if role == "system":
            raise RenderError(f"{where} is a system turn: a case's history holds user, assistant and tool turns")
        if role not in HISTORY_ROLES:
            raise RenderError(f"{where}: role {str(role)[:20]!r} is not user, assistant or tool")
        unknown = set(turn) - {"role", "content", "tool_calls", "tool_call_id"}
        if unknown:
            raise RenderError(f"{where}: unknown key '{sorted(map(str, unknown))[0][:40]}'")
        if content is not None and not isinstance(content, str):
            raise RenderError(f"{where}: content should be text, got {type(content).__name__}")
        if (role == "tool") != ("tool_call_id" in turn) or ("tool_calls" in turn and role != "assistant"):
            raise RenderError(f"{where}: only a tool turn names tool_call_id, only an assistant turn has tool_calls")
        kept: dict[str, Any] = {"role": role, "content": content or ""}
        if "tool_calls" in turn:
            kept["tool_calls"] = _history_calls(where, turn["tool_calls"])
        if "tool_call_id" in turn:
            kept["tool_call_id"] = str(turn["tool_call_id"])
        turns.append(kept)
    return turns


def _history_calls(where: str, calls: Any) -> list[dict[str, Any]]:
    if not isinstance(calls, list) or not all(isinstance(c, Mapping) for c in calls):
        raise RenderError(f"{where}: tool_calls is a list of calls")
    try:
        return [called(c) for c in calls]
    except (KeyError, TypeError, AttributeError):
        raise RenderError(f"{where}: a tool call is {{id, function: {{name, arguments}}}}") from None


def coerce(var: Variable, raw: str, name: str) -> Any:
    """Parse a command-line string (or a pipeline step's output) for a variable of ``var.type``."""
    from ..redact import clip
    from ..yamlio import nesting_depth

    try:
        if var.type in ("string", "image", "any"):
            return raw
        if var.type == "integer":
            return int(raw)
        if var.type == "number":
            return float(raw)
        if var.type == "boolean":
            lowered = raw.strip().lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ValueError(raw)
        value = json.loads(raw)
    except (ValueError, RecursionError):  # nesting deeper than Python recurses is no value either
        raise RenderError(f"variable '{name}' expects {var.type}, cannot read {clip(raw, 80)!r}") from None
    if nesting_depth(value, MAX_VALUE_DEPTH) > MAX_VALUE_DEPTH:  # rendering and the store walk it
        raise RenderError(f"variable '{name}': the {var.type} nests deeper than {MAX_VALUE_DEPTH} levels")
    return value


MAX_VALUE_DEPTH = 64  # levels a variable's JSON value may nest


def called(call: Any) -> dict[str, Any]:
    """A tool call of a prompt's message (spec object, or a bundle's plain data) in OpenAI's shape,
    its arguments the JSON text the API carries."""
    data = call if isinstance(call, Mapping) else call.model_dump()
    function = data["function"]
    args = function.get("arguments", {})
    text = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
    return {"id": str(data["id"]), "type": "function", "function": {"name": str(function["name"]), "arguments": text}}
