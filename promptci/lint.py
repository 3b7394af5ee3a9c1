"""``promptci lint``: every problem in prompts, suites and labels, as ``file:line:col``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jinja2
from pydantic import BaseModel, ValidationError

from .config import describe_validation_error
from .errors import InputError, PromptciError
from .evals.suite import Suite
from .project import Project
from .prompts import template
from .prompts.registry import PROMPT_SUFFIXES, Ref, Registry
from .prompts.spec import PromptSpec
from .yamlio import YamlDocument, parse_yaml

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One finding. Sorted by file, then position."""

    path: str
    line: int
    col: int
    severity: Severity
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.severity}: {self.message} [{self.code}]"


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


@dataclass
class _File:
    """A parsed file and the diagnostics found in it."""

    path: str
    doc: YamlDocument | None = None
    found: list[Diagnostic] = field(default_factory=list)

    @property
    def data(self) -> dict[str, Any]:
        data = self.doc.data if self.doc else None
        return data if isinstance(data, dict) else {}

    def add(
        self, loc: Sequence[str | int], code: str, message: str, severity: Severity = "error", *, value: bool = False
    ) -> None:
        pos = self.doc.position(loc, value=value) if self.doc else None
        self.found.append(Diagnostic(self.path, pos.line if pos else 1, pos.col if pos else 1, severity, code, message))

    def add_error(self, exc: InputError, code: str) -> None:
        self.found.append(Diagnostic(self.path, exc.line or 1, exc.col or 1, "error", code, exc.message))


def lint(project: Project, paths: Sequence[str | Path] = ()) -> LintReport:
    """Check the whole project; with ``paths``, report only findings in those files or folders.

    Cross-file checks (duplicate names, suites naming prompts) always see every file.
    """
    registry = Registry(project)
    prompts = [_lint_prompt(project, p) for p in registry.files()]
    names = _check_duplicates(prompts)
    suites = [_lint_suite(project, p, names) for p in _suite_files(project)]
    files = prompts + suites
    if project.labels_path.is_file():
        files.append(_lint_labels(registry, set(names)))
    selected = [project.path(p) for p in paths]
    for path in selected:
        if not path.exists():
            raise InputError(f"no such file or directory: {path}")
    report = LintReport(files=0)
    for f in files:
        absolute = project.root / f.path
        if selected and not any(absolute == s or absolute.is_relative_to(s) for s in selected):
            continue
        report.files += 1
        report.diagnostics.extend(f.found)
    report.diagnostics.sort()
    return report


def _read(project: Project, path: Path) -> _File:
    f = _File(project.rel(path))
    try:
        f.doc = parse_yaml(path.read_text(encoding="utf-8"), f.path)
    except InputError as exc:
        f.add_error(exc, "yaml")
    except (OSError, UnicodeDecodeError) as exc:
        f.found.append(Diagnostic(f.path, 1, 1, "error", "read", f"cannot read file: {exc}"))
    return f


def _validate(f: _File, model: type[BaseModel]) -> BaseModel | None:
    if f.doc is None:
        return None
    if not isinstance(f.doc.data, dict):
        f.add((), "schema", "expected a mapping of keys to values")
        return None
    try:
        return model.model_validate(f.doc.data)
    except ValidationError as exc:
        for err in exc.errors():
            f.add(err["loc"], "schema", describe_validation_error(err))
        return None


def _lint_prompt(project: Project, path: Path) -> _File:
    f = _read(project, path)
    _validate(f, PromptSpec)
    if f.doc is None:
        return f
    # Templates are checked from the raw data so that a schema error elsewhere hides nothing.
    declared = f.data.get("variables")
    declared_names = set(declared) if isinstance(declared, dict) else set()
    used: set[str] = set()
    sources = _templates(f.data)
    parsed_all = True
    for loc, source in sources:
        try:
            names = template.used_variables(source)
        except jinja2.TemplateSyntaxError as exc:
            pos = f.doc.template_position(loc, exc.lineno or 1)
            f.found.append(Diagnostic(f.path, pos.line, pos.col, "error", "jinja", f"template syntax: {exc.message}"))
            parsed_all = False
            continue
        used |= names
        for name in sorted(names - declared_names):
            f.add(loc, "undeclared-variable", f"variable '{name}' is used but not declared under 'variables'", value=True)
    # A template that does not parse uses unknown names: say nothing about unused ones.
    for name in sorted(declared_names - used) if sources and parsed_all else ():
        f.add(("variables", name), "unused-variable", f"variable '{name}' is declared but never used", "warning")
    return f


def _templates(data: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    found: list[tuple[tuple[str | int, ...], str]] = []
    if isinstance(data.get("template"), str):
        found.append((("template",), data["template"]))
    messages = data.get("messages")
    if isinstance(messages, list):
        for i, m in enumerate(messages):
            if isinstance(m, dict) and isinstance(m.get("content"), str):
                found.append((("messages", i, "content"), m["content"]))
    return found


def _check_duplicates(prompts: list[_File]) -> dict[str, dict[str, Any]]:
    """Report names declared twice; return each valid name's declared variables."""
    by_name: dict[str, list[_File]] = defaultdict(list)
    for f in prompts:
        name = f.data.get("name")
        if isinstance(name, str):
            by_name[name].append(f)
    for name, owners in by_name.items():
        for f in owners[1:]:
            others = ", ".join(o.path for o in owners if o is not f)
            f.add(("name",), "duplicate-name", f"prompt name '{name}' is also declared in {others}")
    return {
        name: (owners[0].data.get("variables") if isinstance(owners[0].data.get("variables"), dict) else {})
        for name, owners in by_name.items()
    }


def _suite_files(project: Project) -> Iterator[Path]:
    root = project.evals_dir
    if root.is_dir():
        yield from sorted(p for p in root.rglob("*") if p.suffix in PROMPT_SUFFIXES and p.is_file())


def _lint_suite(project: Project, path: Path, prompts: dict[str, dict[str, Any]]) -> _File:
    f = _read(project, path)
    suite = _validate(f, Suite)
    if not isinstance(suite, Suite):
        return f
    for i, raw in enumerate(suite.prompts):
        try:
            ref = Ref.parse(raw)
        except InputError as exc:
            f.add(("prompts", i), "prompt-ref", exc.message)
            continue
        if ref.name not in prompts:
            f.add(("prompts", i), "unknown-prompt", f"suite names prompt '{ref.name}', which does not exist")
            continue
        declared = prompts[ref.name]
        given = set(suite.dataset.vars) if suite.dataset else set()
        for name in sorted(given - set(declared)):
            f.add(("dataset", "vars", name), "unknown-variable", f"prompt '{ref.name}' declares no variable '{name}'")
        for c, case in enumerate(suite.cases):
            for name in sorted(set(case.vars) - set(declared)):
                f.add(("cases", c, "vars", name), "unknown-variable", f"prompt '{ref.name}' declares no variable '{name}'")
    if suite.dataset is not None:
        try:
            data_path = project.path(path.parent / suite.dataset.path)
        except PromptciError as exc:
            f.add(("dataset", "path"), "dataset", exc.message)
        else:
            if not data_path.is_file():
                f.add(("dataset", "path"), "dataset", f"dataset file not found: {project.rel(data_path)}")
    return f


def _lint_labels(registry: Registry, names: set[str]) -> _File:
    from .prompts.labels import parse_labels

    project = registry.project
    f = _read(project, project.labels_path)
    if f.doc is None:
        return f
    try:
        labels, _ = parse_labels(project.labels_path.read_text(encoding="utf-8"), f.path)
    except InputError as exc:
        f.add_error(exc, "labels")
        return f
    for prompt, entries in labels.items():
        for label, sha in entries.items():
            problem = _label_problem(registry, prompt, sha)
            if problem:
                f.add((prompt, label), "label-target", f"label '{prompt}@{label}' {problem}")
            elif prompt not in names:
                f.add((prompt, label), "label-orphan", f"prompt '{prompt}' is no longer in the working tree", "warning")
    return f


def _label_problem(registry: Registry, prompt: str, sha: str) -> str | None:
    try:
        registry.get(prompt, sha)
    except PromptciError as exc:
        if exc.message.startswith("unknown revision"):
            return f"points at {sha[:10]}, which is not a commit in this repository"
        if exc.message.startswith("no prompt named"):
            return f"points at {sha[:10]}, where the prompt does not exist"
        return f"points at {sha[:10]}, where the prompt is broken: {exc}"
    return None
