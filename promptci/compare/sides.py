"""The two sides of a comparison and the stored results that belong to each.

A side is the working tree, a git revision or a run id. For a revision, the suites,
datasets and prompts are read from a temporary worktree of that commit; its results
are the stored rows with the same identity (suite, prompt content hash, case id,
repeat, model and parameters), from whichever run produced them.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..evals.plan import CaseFilter, Item, Plan, build_plan, suite_files
from ..project import Project
from ..prompts.registry import Registry
from ..store import Store

WORKTREE = "working tree"


@dataclass(frozen=True)
class Side:
    label: str
    kind: str  # worktree, rev or run
    sha: str | None = None
    run_id: str | None = None


@dataclass(frozen=True)
class Scope:
    """What a comparison covers: the suites named (default: every suite), the prompts named
    (default: each suite's own), and the cases eval's --filter, --shard, --sample and --head pick."""

    suites: tuple[str, ...] = ()
    prompts: tuple[str, ...] = ()
    cases: CaseFilter = field(default_factory=CaseFilter)


@dataclass(frozen=True)
class HeldOut:
    """One suite and prompt's held-out test cases: the comparison an optimization's PR reports."""

    suite: str
    prompt: str
    case_ids: tuple[str, ...]


@dataclass
class SideResults:
    """A side's results, held in a temp table of the store's connection."""

    side: Side
    table: str
    missing: list[Item] = field(default_factory=list)
    prompt_files: dict[str, str] = field(default_factory=dict)  # prompt name -> path, for annotations
    # suite -> what its results depend on (prompt, scorers, model, cases); None for a run's side
    identity: dict[str, frozenset[tuple[object, ...]]] | None = None

    def subjects(self) -> frozenset[str]:
        """The prompts and pipelines this side's suites evaluate (none known for a run's side)."""
        return frozenset(str(key[0]) for keys in (self.identity or {}).values() for key in keys)

    def keep(self, store: Store, suites: set[str]) -> None:
        """Only ``suites`` on this side, in its table and among its missing cases."""
        store.keep_suites(self.table, sorted(suites))
        self.missing = [i for i in self.missing if i.task.suite_name in suites]

    def restrict(self, store: Store, held: HeldOut) -> None:
        """Only ``held``'s cases on this side, in a table of their own and among its missing cases."""
        table = f"{self.table}_held"
        store.restrict_side(self.table, table, held.suite, held.prompt, list(held.case_ids))
        wanted = set(held.case_ids)
        self.table = table
        self.missing = [
            i
            for i in self.missing
            if i.task.suite_name == held.suite and i.task.prompt.name == held.prompt and i.case.id in wanted
        ]


def resolve_side(project: Project, store: Store, text: str | None, *, default_rev: str | None = None) -> Side:
    """``text`` as a run id, else a git revision; None means ``default_rev`` or the working tree."""
    if text is None and default_rev is None:
        return Side(WORKTREE, "worktree")
    if text is not None and store.run_exists(text):
        return Side(f"run {text}", "run", run_id=text)
    rev = text or default_rev
    assert rev is not None
    sha = Registry(project).repo.resolve(rev)
    return Side(rev if text else f"merge-base {sha[:10]}", "rev", sha=sha)


def load(project: Project, store: Store, side: Side, table: str, scope: Scope = Scope()) -> SideResults:
    """Put ``side``'s stored results within ``scope`` into temp table ``table``; for revisions also
    list the items that have no stored result yet."""
    if side.kind == "run":
        store.side_from_run(table, str(side.run_id))
        return SideResults(side, table, prompt_files=Registry(project).paths())
    with checkout(project, side, scope) as (_, plan):
        for task in plan.tasks:
            _ = task.prompt.version  # resolve the commit while the worktree exists
        found = _match(store, plan, table)
        # Cases whose prompt does not render have no answer to compare and are left out.
        missing = [
            i
            for i in plan.items
            if i.runnable and (i.task.suite_name, i.task.prompt.name, i.case.id, i.repeat) not in found
        ]
        files = {t.prompt.name: t.prompt.path for t in plan.tasks}
        return SideResults(side, table, missing, files, _identity(plan))


def load_pair(
    project: Project, store: Store, sides: list[Side], scope: Scope = Scope(), held: HeldOut | None = None
) -> tuple[list[SideResults], list[str]]:
    """Both sides' results, as a comparison takes them, and the suites left out.

    ``held`` cuts both to an optimization's held-out cases. Otherwise, unless ``scope`` names
    suites, a suite whose prompts, scorers, models and cases are the same on both sides is left
    out: it would give the same answers on both.
    """
    results = [load(project, store, side, f"side_{i}", scope) for i, side in enumerate(sides)]
    if held is not None:
        for found in results:
            found.restrict(store, held)
        return results, []
    if scope.suites:
        return results, []
    kept, left_out = differing(*results)
    if left_out:
        for found in results:
            found.keep(store, kept)
    return results, left_out


def _identity(plan: Plan) -> dict[str, frozenset[tuple[object, ...]]]:
    """Per suite, everything its results depend on: a suite whose identity is the same on both
    sides gives the same answers on both, so comparing it says nothing."""
    found: dict[str, set[tuple[object, ...]]] = {}
    for i in plan.items:
        t = i.task
        key = (t.prompt.name, t.prompt.content_hash, t.suite_hash, t.model_id, t.params.digest(), i.case.id, i.repeat)
        found.setdefault(t.suite_name, set()).add(key)
    return {suite: frozenset(keys) for suite, keys in found.items()}


def differing(base: SideResults, head: SideResults) -> tuple[set[str], list[str]]:
    """The suites whose prompts, scorers, models or cases differ between the sides, and those left
    out because they do not (None: a run's side, where every suite is compared)."""
    if base.identity is None or head.identity is None:
        return set(), []
    suites = set(base.identity) | set(head.identity)
    same = sorted(s for s in suites if base.identity.get(s) == head.identity.get(s))
    return suites - set(same), same


@contextmanager
def checkout(project: Project, side: Side, scope: Scope = Scope()) -> Iterator[tuple[Project, Plan]]:
    """The project as it is on ``side`` and its eval plan within ``scope``; a revision gets a
    temporary worktree."""
    if side.kind == "worktree":
        yield project, _plan(project, scope)
        return
    repo = Registry(project).repo
    tmp = Path(tempfile.mkdtemp(prefix="promptci-side-"))
    worktree = tmp / "tree"
    try:
        repo.add_worktree(worktree, side.sha or "")
        try:
            there = worktree / project.root.relative_to(repo.toplevel)
            found = (there / "promptci.yaml").exists()
            side_project = Project.discover(there) if found else Project(there, project.config)
            yield side_project, _plan(side_project, scope)
        finally:
            repo.remove_worktree(worktree)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _plan(project: Project, scope: Scope) -> Plan:
    suites = suite_files(project, scope.suites)
    return build_plan(project, suites, prompts=scope.prompts, case_filter=scope.cases)


def _match(store: Store, plan: Plan, table: str) -> set[tuple[str, str, str, int]]:
    """Fill ``table`` with the newest stored row for every item of ``plan``; return the keys found."""
    keys = [
        (
            i.task.suite_name,
            i.task.prompt.name,
            i.task.prompt.content_hash,
            i.case.id,
            i.repeat,
            i.task.model_id,
            i.task.params.digest(),
            i.task.suite_hash,
        )
        for i in plan.items
        if i.runnable
    ]
    return store.side_from_items(table, keys)


def missing_error(results: SideResults) -> InputError:
    suites = sorted({i.task.suite_name for i in results.missing})
    where = results.side.label
    return InputError(
        f"no stored results for {len(results.missing)} case(s) at {where} (suites: {', '.join(suites)})",
        hint="rerun with --run-missing to evaluate them now, or run `promptci eval` at that revision",
    )
