"""An optimization's held-out test cases, which ``promptci compare --optimization ID`` compares."""

from __future__ import annotations

from typing import Any

from ..compare.sides import HeldOut
from ..errors import NotFoundError
from ..project import Project
from ..prompts.registry import Registry
from .output import TRAILER, read_held_out_spec
from .session import resolve_task
from .settings import Settings
from .split import parse_fractions, split_cases


def held_out(project: Project, registry: Registry, store: Any, opt_id: str) -> HeldOut:
    """A stored optimization's held-out test cases: its split, recomputed from its seed."""
    record = store.optimization(opt_id)
    if record is not None:
        settings = Settings.from_json(record["settings"])
        prompt, suite, base = record["prompt"], record["suite"], record["base_commit"]
        fractions, seed, model = settings.split, settings.seed, settings.task_model
    else:  # not run here: the branch's commit says what the test split was
        found = registry.repo.find_message(f"{TRAILER}: {opt_id}")
        fields = read_held_out_spec(found[1]) if found else None
        if found is None or fields is None:
            raise NotFoundError(
                f"no optimization '{opt_id}' in {project.config.db} or in any commit's trailers",
                hint="fetch the optimization branch, or give the full id from the PR body",
            )
        prompt, suite, base = fields["prompt"], fields["suite"], registry.repo.parents(found[0])[0]
        fractions, seed, model = parse_fractions(fields["split"]), int(fields["seed"]), None
    task = resolve_task(project, prompt, suite, base, model)
    test = split_cases(task.cases, fractions, seed).test
    return HeldOut(task.suite_name, task.prompt.name, tuple(c.id for c in test))
