"""Finding pipelines by name, resolving their step prompts, and a pipeline version's identity.

A pipeline version is its own file plus the step prompts at the revisions they resolve
to: its content hash covers both, so an edited step prompt is a changed pipeline for
``eval --changed``, the cache, ``compare`` and ``optimize``.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from pydantic import ValidationError

from ..config import validation_error
from ..errors import InputError, NotFoundError, PromptciError
from ..project import Project
from ..prompts.prompt import Prompt, PromptVersion, bind, content_hash
from ..prompts.registry import Files, Ref, Registry
from ..prompts.spec import Variable
from ..yamlio import YamlDocument, canonical_json, parse_yaml
from .graph import Problem, binding_problems, problems
from .spec import PipelineSpec


@dataclass(frozen=True)
class Pipeline:
    """A pipeline with its step prompts resolved, as a suite runs it.

    ``content_hash`` identifies the version: the file's own hash plus each step prompt's.
    """

    spec: PipelineSpec
    path: str
    source: str
    file_hash: str
    prompts: tuple[Prompt, ...]  # one per step, in step order
    content_hash: str
    rev: str | None = None
    _commit_lookup: Callable[[], PromptVersion] | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def variables(self) -> Mapping[str, Variable]:
        return self.spec.inputs

    @cached_property
    def version(self) -> PromptVersion:
        """The content hash, and the newest commit among the file's and its step prompts';
        dirty when any of them has uncommitted changes."""
        if self._commit_lookup is None:
            return PromptVersion(self.content_hash, None, True)
        return self._commit_lookup()

    def bind(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``inputs`` against the declaration and fill in defaults."""
        return bind(f"pipeline '{self.name}'", self.spec.inputs, inputs)


def parse_pipeline(text: str, path: str) -> tuple[YamlDocument, PipelineSpec]:
    """Parse and validate one pipeline file on its own; the first problem raises, positioned."""
    doc = parse_yaml(text, path)
    if not isinstance(doc.data, dict):
        raise InputError("a pipeline file must be a mapping with 'name' and 'steps'", path=path, line=1, col=1)
    try:
        spec = PipelineSpec.model_validate(doc.data)
    except ValidationError as exc:
        raise validation_error(exc, doc) from None
    raise_first(problems(spec), doc)
    return doc, spec


def raise_first(found: list[Problem], doc: YamlDocument) -> None:
    """The first error among ``found`` as a positioned :class:`InputError`."""
    for problem in found:
        if problem.severity == "error":
            raise positioned(problem, doc)


def positioned(problem: Problem, doc: YamlDocument) -> InputError:
    pos = problem.position(doc)
    return InputError(problem.message, path=doc.path, line=pos.line, col=pos.col)


def version_hash(file_hash: str, prompts: tuple[Prompt, ...]) -> str:
    material = {"pipeline": file_hash, "steps": [p.content_hash for p in prompts]}
    return hashlib.sha256(canonical_json(material).encode()).hexdigest()


class Pipelines(Files[Pipeline]):
    """The pipelines of one project; step prompts come from ``prompts``."""

    noun = "pipeline"

    def __init__(self, project: Project, prompts: Registry | None = None) -> None:
        super().__init__(project)
        self.prompts = prompts or Registry(project)

    @property
    def directory(self) -> str:
        return self.project.config.pipelines_dir

    def _read(self, text: str, path: str, shown: str, sha: str | None) -> tuple[Pipeline, str]:
        doc, spec = parse_pipeline(text, shown)
        prompts = tuple(self._step_prompt(doc, spec, i, sha) for i in range(len(spec.steps)))
        for i, (step, prompt) in enumerate(zip(spec.steps, prompts, strict=True)):
            declared = {name: var.required for name, var in prompt.variables.items()}
            for var, code, message in binding_problems(step.id, prompt.name, step.vars, declared):
                loc = ("steps", i, "vars", var) if var else ("steps", i, "prompt")
                raise positioned(Problem(loc, code, message, value=var is None), doc)
        file_hash = content_hash(doc.data)
        digest = version_hash(file_hash, prompts)
        return Pipeline(spec, path, text, file_hash, prompts, digest, sha), digest

    def _step_prompt(self, doc: YamlDocument, spec: PipelineSpec, i: int, sha: str | None) -> Prompt:
        """Step ``i``'s prompt: a plain name is read at the pipeline's own revision."""
        step = spec.steps[i]
        at = doc.position(("steps", i, "prompt"), value=True)
        try:
            ref = Ref.parse(step.prompt)
            return self.prompts.get(ref.name, sha) if ref.at is None else self.prompts.resolve(ref)
        except NotFoundError as exc:
            raise InputError(
                f"step '{step.id}': {exc.message}", path=doc.path, line=at.line, col=at.col, hint=exc.hint
            ) from None
        except PromptciError as exc:
            if exc.path is None:
                exc.path, exc.line, exc.col = doc.path, at.line, at.col
            raise

    def _made(self, thing: Pipeline, lookup: Callable[[], PromptVersion]) -> Pipeline:
        return replace(thing, _commit_lookup=lambda: self._combined(thing, lookup()))

    def _combined(self, pipeline: Pipeline, own: PromptVersion) -> PromptVersion:
        """Dirty when any file is; else the newest commit that changed the file or a step's prompt."""
        versions = [own, *(p.version for p in pipeline.prompts)]
        if any(v.dirty or v.commit is None for v in versions):
            return PromptVersion(pipeline.content_hash, None, True)
        paths = [self.git_path(pipeline.path), *(self.git_path(p.path) for p in pipeline.prompts)]
        newest = self.repo.last_change_of(paths, pipeline.rev or "HEAD")
        return PromptVersion(pipeline.content_hash, newest or own.commit, False)


class Subjects:
    """What a suite's ``prompts:`` entry may name: a prompt or a pipeline, in one namespace."""

    def __init__(self, project: Project) -> None:
        self.prompts = Registry(project)
        self.pipelines = Pipelines(project, self.prompts)
        self._pipeline_files: dict[str, str] | None = None

    def is_pipeline(self, name: str) -> bool:
        if self._pipeline_files is None:
            self._pipeline_files = self.pipelines.paths() if self.pipelines.files() else {}
        if name not in self._pipeline_files:
            return False
        prompt_file = self.prompts.paths().get(name)
        if prompt_file is not None:
            raise InputError(
                f"'{name}' names both a prompt ({prompt_file}) and a pipeline",
                path=self._pipeline_files[name],
                hint="prompts and pipelines share one namespace; rename one",
            )
        return True

    def names(self) -> set[str]:
        """Every prompt and pipeline in the working tree."""
        return set(self.prompts.paths()) | (set(self.pipelines.paths()) if self.pipelines.files() else set())

    def check_named(self, names: tuple[str, ...], elsewhere: frozenset[str] = frozenset()) -> None:
        """Refuse a name (``--prompt``) that is no prompt or pipeline here, nor in ``elsewhere``
        (the names a compared revision has): a typo must not pass a gate as "nothing to do"."""
        known = self.names() | elsewhere
        unknown = [n for n in names if n not in known]
        if unknown:
            near = difflib.get_close_matches(unknown[0], sorted(known), n=1)
            raise NotFoundError(
                f"no prompt or pipeline named {unknown[0]!r}",
                hint=f"did you mean {near[0]!r}? `promptci ls` lists them" if near else "`promptci ls` lists them",
            )

    def resolve(self, ref: str | Ref) -> Prompt | Pipeline:
        ref = Ref.parse(ref) if isinstance(ref, str) else ref
        return self.pipelines.resolve(ref) if self.is_pipeline(ref.name) else self.prompts.resolve(ref)
