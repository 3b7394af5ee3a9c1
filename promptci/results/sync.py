"""Publishing and reading back results as Parquet sets.

``push`` adds the finished runs and optimizations a destination lacks, each as its own set, and
the cached answers not yet published as one batch: the bytes a push adds grow with what is new,
never with what was there. ``pull`` copies in the sets the local database lacks, each whole or
not at all; a damaged or foreign set is skipped with a warning naming it and blocks nothing
else. ``reading`` lays the published sets over the local database without copying them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import GitError, InputError
from ..store import MergeCounts, Store
from ..store.parquet import SETS, digest
from .destinations import Branch, Destination, Folder, Listing, scratch_dir


@dataclass
class Pushed:
    runs: int = 0
    optimizations: int = 0
    cached: int = 0
    files: int = 0
    bytes: int = 0
    converted: MergeCounts | None = None  # from the branch's old whole-database snapshot
    warnings: list[str] = field(default_factory=list)


@dataclass
class Pulled:
    runs: int = 0
    optimizations: int = 0
    rows: int = 0
    cached: int = 0
    converted: MergeCounts | None = None
    warnings: list[str] = field(default_factory=list)
    found: bool = True  # False: the destination holds nothing yet


def push(db: Path, destination: Destination, attempts: int = 8, backoff: float = 0.5) -> Pushed:
    """Publish what ``destination`` lacks. Losing a race to another pusher (a moved branch) only
    means listing again and retrying, with exponential backoff and full jitter."""
    done = Pushed()
    with scratch_dir() as tmp:
        scratch = Path(tmp)
        converted = False
        for attempt in range(attempts):
            listing = destination.listing()
            if listing.legacy is not None and isinstance(destination, Branch) and not converted:
                done.converted, warning = _convert(db, destination, scratch)
                converted = True  # what it held is merged; a retry only drops it from the tree
                if warning:
                    done.warnings.append(warning)
            files, plan = _export(db, listing, scratch / "sets", scratch / f"cache{attempt}.parquet")
            if not files and listing.legacy is None:
                return done
            counts = f"{len(plan['runs'])} runs, {len(plan['optimizations'])} optimizations"
            if destination.publish(files, f"promptci results: {counts}", drop_legacy=listing.legacy is not None):
                if plan["cache"]:
                    with Store(db) as store:
                        store.mark_published(plan["cache"], plan["batch"][0])
                done.runs, done.optimizations = len(plan["runs"]), len(plan["optimizations"])
                done.cached = len(plan["cache"])
                done.files, done.bytes = len(files), sum(p.stat().st_size for _, p in files)
                return done
            time.sleep(random.uniform(0, min(10.0, backoff * 2**attempt)))
    raise GitError(f"could not push to {destination.name}: it kept moving after {attempts} tries", hint="try again")


def _export(
    db: Path, listing: Listing, scratch: Path, batch: Path
) -> tuple[list[tuple[str, Path]], dict[str, list[str]]]:
    """The files to publish, in order (each set's marker after its other files), and what they
    hold. A finished set never changes, so one written out by an earlier try is used again."""
    files: list[tuple[str, Path]] = []
    plan: dict[str, list[str]] = {"runs": [], "optimizations": [], "cache": [], "batch": []}
    with Store(db) as store:
        for kind in SETS:
            have = listing.ids(kind)
            for set_id in store.finished(kind):
                if set_id in have:
                    continue
                directory = scratch / kind / set_id
                if directory.is_dir():
                    paths = [p for t in SETS[kind] if (p := directory / f"{t}.parquet").is_file()]
                else:
                    paths = store.export_set(kind, set_id, directory)
                files += [(f"{kind}/{set_id}/{path.name}", path) for path in paths]
                plan[kind].append(set_id)
        keys = store.export_cache(batch, sorted(listing.cache))
        if keys:
            name = digest(batch)
            if name not in listing.cache:
                files.append((f"cache/{name}.parquet", batch))
            plan["cache"], plan["batch"] = keys, [name]
    return files, plan


def pull(db: Path, destination: Destination) -> Pulled:
    """Copy in the sets and cache batches of ``destination`` that ``db`` lacks."""
    done = Pulled()
    listing = destination.listing()
    done.found = bool(listing.size() or listing.legacy)
    with scratch_dir() as tmp:
        scratch = Path(tmp)
        if listing.legacy is not None and isinstance(destination, Branch):
            done.converted, warning = _convert(db, destination, scratch)
            if warning:
                done.warnings.append(warning)
        with Store(db) as store:
            fs = destination.filesystem()
            if fs is not None:
                store.register_filesystem(fs)
            for kind in SETS:
                lacking = listing.lacking(kind, store.present(kind))
                destination.prefetch([e for files in lacking.values() for e in files.values()], scratch)
                found, refused = {}, {}
                for set_id, entries in lacking.items():
                    try:
                        found[set_id] = destination.readable(entries, scratch)
                    except InputError as exc:
                        refused[set_id] = exc.message
                copied, rows, problems = store.import_sets(kind, found)
                for set_id, why in sorted({**refused, **problems}.items()):
                    done.warnings.append(f"{destination.name}: {kind}/{set_id}: {why}; skipped")
                done.rows += rows
                setattr(done, kind, len(copied))
            origins = store.cache_origins()
            for name, entry in sorted(listing.cache.items()):
                if name in origins:
                    continue
                try:
                    local = destination.local_copy(entry, scratch)
                    if digest(local) != name:  # a batch is named by its bytes: rewritten, it has another name
                        raise InputError("its name is not the hash of its content")
                    done.cached += store.import_cache(name, str(local), local.stat().st_size)
                except InputError as exc:
                    done.warnings.append(f"{destination.name}: cache/{name}.parquet: {exc.message}; skipped")
    return done


def _convert(db: Path, branch: Branch, scratch: Path) -> tuple[MergeCounts | None, str | None]:
    """Merge the branch's old whole-database snapshot in; a damaged or foreign one is skipped."""
    copy = branch.legacy_copy(scratch)
    if copy is None:
        return None, None
    where = f"{branch.branch}:results.duckdb at {(branch.tip or '')[:10]}"
    try:
        Store(copy, read_only=True).close()  # refuses foreign and damaged files
        with Store(db) as store:
            return store.merge_from(copy), None
    except InputError as exc:
        return None, f"{where} is not a usable results database ({exc.message}); skipped, not merged"


@contextmanager
def reading(db: Path, destination: Folder) -> Iterator[tuple[Store, list[str]]]:
    """The local database (read-only; an empty one where there is none) with the sets published
    at ``destination`` that it lacks laid over its tables, read in place; and the warnings."""
    listing = destination.listing()
    store = Store(db, read_only=True, external=True) if db.exists() else Store.empty()
    try:
        fs = destination.filesystem()
        if fs is not None:
            store.register_filesystem(fs)
        files: dict[str, list[tuple[str, int | None]]] = {}
        for kind, tables in SETS.items():
            for entries in listing.lacking(kind, store.present(kind)).values():
                for table in tables:
                    if table in entries:
                        files.setdefault(table, []).append((entries[table].location, entries[table].size))
        yield store, store.overlay(files)
    finally:
        store.close()
