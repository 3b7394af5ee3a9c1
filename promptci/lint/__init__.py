"""``promptci lint``: every problem in prompts, suites and labels, as ``file:line:col``.

Linting has two phases. Each file is first analysed on its own into :class:`Facts`:
its own diagnostics plus what other files need to know (a prompt's name and
variables, a suite's prompt references). Facts depend only on the file's bytes, so
they are cached by content hash, and an unchanged file costs nothing on the next
run. The cross-file checks (duplicate names, suites naming prompts, labels pointing
at commits, optimize: blocks, schema files) then run over the facts every time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..diagnostics import Diagnostic, Facts, Located, Severity
from ..errors import InputError, PromptciError
from ..evals.modules import repository_module
from ..lint_cache import LintCache
from ..project import Project
from ..prompts.registry import PROMPT_SUFFIXES, Files, Ref, Registry
from ..prompts.tools import problems as tool_problems
from ..settings import loglik_refusal
from ..yamlio import YamlDocument, parse_yaml
from .datasets import dataset_warnings
from .images import check_images
from .optimize import check_optimize, method_problem
from .schemafiles import check_schema_files

if TYPE_CHECKING:
    from ..pipelines.load import Pipelines


@dataclass
class LintReport:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: int = 0

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]


def lint(project: Project, paths: Sequence[str | Path] = (), *, cache: bool = True) -> LintReport:
    """Check the whole project; with ``paths``, report only findings in those files or folders.

    Cross-file checks always see every file. ``cache`` keeps per-file results in
    the project's cache directory, keyed by content hash.
    """
    selected = [project.path(p) for p in paths]
    for path in selected:
        if not path.exists():
            raise InputError(f"no such file or directory: {path}")
    store = LintCache(project.path(project.config.cache_dir) / "lint.json" if cache else None)
    registry = Registry(project)
    prompts = [store.facts(project, p, "prompt", _analyse) for p in registry.files()]
    suites = [store.facts(project, p, "suite", _analyse) for p in _files(project.evals_dir)]
    pipelines = [store.facts(project, p, "pipeline", _analyse) for p in _files(project.pipelines_dir)]
    labels = [store.facts(project, project.labels_path, "labels", _analyse)] if project.labels_path.is_file() else []
    found = _check_duplicates(prompts + pipelines)
    declared: dict[str, list[str]] = {}
    for f in prompts + pipelines:
        if f.name:
            declared.setdefault(f.name.text, f.variables)  # the first declaration counts
    for f in pipelines:
        found += _check_pipeline(f, prompts, {p.name.text for p in pipelines if p.name})
    for f in suites:
        found += _check_suite(project, f, declared)
    flows = {p.name.text for p in pipelines if p.name}
    if labels:
        from ..pipelines.load import Pipelines
    for f in labels:
        found += _check_labels(registry, Pipelines(project), flows, f, set(declared), store)
    found += check_optimize(project, prompts + pipelines, suites) + check_schema_files(project, prompts)
    found += check_images(project, prompts)
    store.save()

    report = LintReport()
    for f in prompts + pipelines + suites + labels:
        if _selected(project, f.path, selected):
            report.files += 1
            report.diagnostics += f.found
    report.diagnostics += [d for d in found if _selected(project, d.path, selected)]
    report.diagnostics.sort()
    return report


def _selected(project: Project, rel: str, selected: list[Path]) -> bool:
    absolute = project.root / rel
    return not selected or any(absolute == s or absolute.is_relative_to(s) for s in selected)


def _files(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.suffix in PROMPT_SUFFIXES and p.is_file())


# Phase 1: one file on its own.


class _Analysis:
    """Collects diagnostics for one file, positioned through its YAML node tree."""

    def __init__(self, facts: Facts, doc: YamlDocument | None) -> None:
        self.facts = facts
        self.doc = doc

    @property
    def data(self) -> dict[str, Any]:
        data = self.doc.data if self.doc else None
        return data if isinstance(data, dict) else {}

    def at(self, loc: Sequence[str | int], *, value: bool = False) -> tuple[int, int]:
        pos = self.doc.position(loc, value=value) if self.doc else None
        return (pos.line, pos.col) if pos else (1, 1)

    def add(self, loc: Sequence[str | int], code: str, message: str, severity: Severity = "error", **kw: bool) -> None:
        line, col = self.at(loc, **kw)
        self.facts.found.append(Diagnostic(self.facts.path, line, col, severity, code, message))

    def located(self, text: str, loc: Sequence[str | int], *, value: bool = False) -> Located:
        return Located(text, *self.at(loc, value=value))

    def validate(self, model: Any) -> Any:
        from pydantic import ValidationError

        from ..config import describe_validation_error

        if self.doc is None:
            return None
        if not isinstance(self.doc.data, dict):
            self.add((), "schema", "expected a mapping of keys to values")
            return None
        try:
            return model.model_validate(self.doc.data)
        except ValidationError as exc:
            for err in exc.errors():
                self.add(err["loc"], "schema", describe_validation_error(err))
            return None


def _analyse(text: str, rel: str, kind: str) -> Facts:
    facts = Facts(rel, kind)  # type: ignore[arg-type]
    try:
        doc: YamlDocument | None = parse_yaml(text, rel)
    except InputError as exc:
        facts.found.append(Diagnostic(rel, exc.line or 1, exc.col or 1, "error", "yaml", exc.message))
        doc = None
    a = _Analysis(facts, doc)
    if kind == "prompt":
        _analyse_prompt(a)
    elif kind == "suite":
        _analyse_suite(a)
    elif kind == "pipeline":
        _analyse_pipeline(a)
    elif doc is not None:
        _analyse_labels(a, text)
    if kind in ("prompt", "pipeline") and not any(d.code == "secret" for d in facts.found):
        _whole_file_secret(facts, text)
    return facts


def _whole_file_secret(facts: Facts, text: str) -> None:
    """A credential outside the templates (a description, a model parameter, a comment): a bundle
    ships the file as written, so it is an error there too."""
    from ..prompts.template import secret_in

    if at := secret_in(text):
        message = (
            f"the {facts.kind} file holds what looks like a credential, which a bundle would ship;"
            " pass keys through `api_key_env` and values as variables"
        )
        facts.found.append(Diagnostic(facts.path, at[0], at[1], "error", "secret", message))


def _analyse_prompt(a: _Analysis) -> None:
    import jinja2

    from ..prompts import template
    from ..prompts.spec import PromptSpec

    spec = a.validate(PromptSpec)
    if a.doc is None:
        return
    if isinstance(spec, PromptSpec):
        a.facts.required = sorted(name for name, var in spec.variables.items() if var.required)
    if isinstance(a.data.get("name"), str):
        a.facts.name = a.located(a.data["name"], ("name",))
    optimize = a.data.get("optimize")
    if isinstance(optimize, dict) and isinstance(optimize.get("suite"), str):
        a.facts.optimize = a.located(optimize["suite"], ("optimize", "suite"), value=True)
    if isinstance(optimize, dict) and (problem := method_problem(optimize)):
        a.add(("optimize", *problem[0]), "optimize", problem[1])
    declared = a.data.get("variables")
    a.facts.variables = sorted(declared) if isinstance(declared, dict) else []
    # Templates are checked from the raw data so that a schema error elsewhere hides nothing.
    used: set[str] = set()
    sources = _templates(a.data)
    parsed_all = True
    for loc, source in sources:
        try:
            names = template.used_variables(source)
        except jinja2.TemplateSyntaxError as exc:
            pos = a.doc.template_position(loc, exc.lineno or 1)
            a.facts.found.append(
                Diagnostic(a.facts.path, pos.line, pos.col, "error", "jinja", f"template syntax: {exc.message}")
            )
            parsed_all = False
            continue
        used |= names
        if secret := template.secret_in(source):
            pos = a.doc.template_place(loc, *secret)
            message = "the prompt holds what looks like a credential; pass it as a variable, never in the text"
            a.facts.found.append(Diagnostic(a.facts.path, pos.line, pos.col, "error", "secret", message))
        for line, message in template.hazards(source):
            pos = a.doc.template_position(loc, line)
            a.facts.found.append(Diagnostic(a.facts.path, pos.line, pos.col, "error", "template-limit", message))
        for name in sorted(names - set(a.facts.variables)):
            message = f"variable '{name}' is used but not declared under 'variables'"
            a.add(loc, "undeclared-variable", message, value=True)
    for loc, message in tool_problems(a.data):
        a.add(loc, "tools", message)
    messages = a.data.get("messages")  # a {history: NAME} slot uses NAME
    used |= (
        {m["history"] for m in messages if isinstance(m, dict) and isinstance(m.get("history"), str)}
        if isinstance(messages, list)
        else set()
    )
    # A template that does not parse uses unknown names: say nothing about unused ones.
    for name in sorted(set(a.facts.variables) - used) if sources and parsed_all else ():
        a.add(("variables", name), "unused-variable", f"variable '{name}' is declared but never used", "warning")


def _templates(data: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    found: list[tuple[tuple[str | int, ...], str]] = []
    if isinstance(data.get("template"), str):
        found.append((("template",), data["template"]))
    messages = data.get("messages")
    if isinstance(messages, list):
        for i, m in enumerate(messages):
            if isinstance(m, dict) and isinstance(m.get("content"), str):
                found.append((("messages", i, "content"), m["content"]))
    tools = data.get("tools")
    for i, tool in enumerate(tools if isinstance(tools, list) else []):
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("description"), str):
            found.append((("tools", i, "function", "description"), function["description"]))
    return found


def _analyse_suite(a: _Analysis) -> None:
    from ..evals.suite import ChoiceScorer, PythonScorer, Suite

    suite = a.validate(Suite)
    if not isinstance(suite, Suite):
        return
    for i, raw in enumerate(suite.prompts):
        try:
            Ref.parse(raw)
        except InputError as exc:
            a.add(("prompts", i), "prompt-ref", exc.message)
            continue
        a.facts.refs.append(a.located(raw, ("prompts", i)))
    if suite.dataset is not None:
        a.facts.uses += [a.located(name, ("dataset", "vars", name)) for name in suite.dataset.vars]
        a.facts.dataset = a.located(suite.dataset.path, ("dataset", "path"))
    for c, case in enumerate(suite.cases):
        a.facts.uses += [a.located(name, ("cases", c, "vars", name)) for name in case.vars]
    for s, scorer in enumerate(suite.scorers):
        if isinstance(scorer, ChoiceScorer) and scorer.mode == "loglik":
            own = suite.model.provider if suite.model and suite.model.provider else ""
            a.facts.loglik = a.located(own, ("scorers", s, "mode"))
        if isinstance(scorer, PythonScorer):
            module = scorer.function.partition(":")[0]
            a.facts.scorer_modules.append(a.located(module, ("scorers", s, "function"), value=True))


def _analyse_pipeline(a: _Analysis) -> None:
    from ..pipelines.graph import problems
    from ..pipelines.spec import PipelineSpec

    spec = a.validate(PipelineSpec)
    if a.doc is None or not isinstance(spec, PipelineSpec):
        return
    a.facts.name = a.located(spec.name, ("name",))
    a.facts.variables = sorted(spec.inputs)
    if spec.optimize is not None:
        a.facts.optimize = a.located(spec.optimize.suite, ("optimize", "suite"), value=True)
        if problem := method_problem(spec.optimize.model_dump()):
            a.add(("optimize", *problem[0]), "optimize", problem[1])
    for found in problems(spec):
        pos = found.position(a.doc)
        a.facts.found.append(Diagnostic(a.facts.path, pos.line, pos.col, found.severity, found.code, found.message))
    for i, step in enumerate(spec.steps):
        a.facts.step_ids.append(step.id)
        a.facts.step_prompts.append(a.located(step.prompt, ("steps", i, "prompt"), value=True))
        a.facts.step_vars.append([a.located(var, ("steps", i, "vars", var)) for var in step.vars])


def _analyse_labels(a: _Analysis, text: str) -> None:
    from ..prompts.labelfile import parse_labels

    try:
        labels, _ = parse_labels(text, a.facts.path)
    except InputError as exc:
        a.facts.found.append(Diagnostic(a.facts.path, exc.line or 1, exc.col or 1, "error", "labels", exc.message))
        return
    for prompt, entries in labels.items():
        for label, target in entries.items():
            # each version of a split is checked as a label of its own
            for sha in [target] if isinstance(target, str) else [v for v, _ in target.versions]:
                a.facts.labels.append((prompt, label, sha, *a.at((prompt, label))))


# Phase 2: across files.


def _check_duplicates(named: list[Facts]) -> list[Diagnostic]:
    """A name declared twice, by prompts or pipelines alike: they share one namespace."""
    by_name: dict[str, list[Facts]] = defaultdict(list)
    for f in named:
        if f.name:
            by_name[f.name.text].append(f)
    found = []
    for name, owners in by_name.items():
        for f in owners[1:]:
            assert f.name is not None
            others = ", ".join(o.path for o in owners if o is not f)
            message = f"{f.kind} name '{name}' is also declared in {others}"
            found.append(Diagnostic(f.path, f.name.line, f.name.col, "error", "duplicate-name", message))
    return found


def _check_pipeline(f: Facts, prompts: list[Facts], pipelines: set[str]) -> list[Diagnostic]:
    """Each step names a prompt that exists, binds only variables it declares, and all it requires."""
    from ..pipelines.graph import binding_problems

    by_name = {p.name.text: p for p in reversed(prompts) if p.name}  # the first declaration counts
    found = []
    for step_id, ref, bound in zip(f.step_ids, f.step_prompts, f.step_vars, strict=True):
        try:
            name = Ref.parse(ref.text).name
        except InputError as exc:
            found.append(Diagnostic(f.path, ref.line, ref.col, "error", "prompt-ref", exc.message))
            continue
        prompt = by_name.get(name)
        if prompt is None:
            what = "a pipeline; a step runs one prompt" if name in pipelines else "which does not exist"
            message = f"step '{step_id}' names prompt '{name}', {what}"
            found.append(Diagnostic(f.path, ref.line, ref.col, "error", "unknown-prompt", message))
            continue
        declared = {v: v in prompt.required for v in prompt.variables}
        at = {v.text: v for v in bound}
        for var, code, message in binding_problems(step_id, name, at, declared):
            where = at[var] if var else ref
            found.append(Diagnostic(f.path, where.line, where.col, "error", code, message))
    return found


def _check_suite(project: Project, f: Facts, declared: dict[str, list[str]]) -> list[Diagnostic]:
    found = []
    for ref in f.refs:
        name = Ref.parse(ref.text).name
        if name not in declared:
            message = f"suite names prompt '{name}', which does not exist"
            found.append(Diagnostic(f.path, ref.line, ref.col, "error", "unknown-prompt", message))
            continue
        for use in f.uses:
            if use.text not in declared[name]:
                message = f"prompt '{name}' declares no variable '{use.text}'"
                found.append(Diagnostic(f.path, use.line, use.col, "error", "unknown-variable", message))
    for module in f.scorer_modules:
        try:
            repository_module(project.root, module.text)
        except PromptciError as exc:
            found.append(Diagnostic(f.path, module.line, module.col, "error", "python-scorer", exc.message))
    if f.dataset is not None:
        where = (f.path, f.dataset.line, f.dataset.col)
        try:
            data_path = project.path((project.root / f.path).parent / f.dataset.text)
        except PromptciError as exc:
            found.append(Diagnostic(*where, "error", "dataset", exc.message))
        else:
            if not data_path.is_file():
                message = f"dataset file not found: {project.rel(data_path)}"
                found.append(Diagnostic(*where, "error", "dataset", message))
            else:
                found += [Diagnostic(*where, "warning", code, m) for code, m in dataset_warnings(project, f)]
    # A choice ranked by likelihood needs a provider that gives log-probabilities.
    if f.loglik is not None and (refusal := loglik_refusal(f.loglik.text or project.config.model.provider)):
        found.append(Diagnostic(f.path, f.loglik.line, f.loglik.col, "error", "loglik", refusal))
    return found


def _check_labels(
    registry: Registry, pipelines: Pipelines, flows: set[str], f: Facts, names: set[str], store: LintCache
) -> list[Diagnostic]:
    found = []
    for prompt, label, sha, line, col in f.labels:
        files: Files[Any] = pipelines if prompt in flows else registry
        # A prompt found at a commit stays found there: git objects never change.
        problem = None if store.label_ok(prompt, sha) else _label_problem(files, prompt, sha)
        if problem:
            message = f"label '{prompt}@{label}' {problem}"
            found.append(Diagnostic(f.path, line, col, "error", "label-target", message))
            continue
        store.mark_label_ok(prompt, sha)
        if prompt not in names:
            message = f"prompt '{prompt}' is no longer in the working tree"
            found.append(Diagnostic(f.path, line, col, "warning", "label-orphan", message))
    return found


def _label_problem(files: Files[Any], name: str, sha: str) -> str | None:
    try:
        files.get(name, sha)
    except PromptciError as exc:
        if exc.message.startswith("unknown revision"):
            return f"points at {sha[:10]}, which is not a commit in this repository"
        if exc.message.startswith(f"no {files.noun} named"):
            return f"points at {sha[:10]}, where the {files.noun} does not exist"
        return f"points at {sha[:10]}, where the {files.noun} is broken: {exc}"
    return None
