"""What a results database may hold: promptci's base tables and indexes, and nothing that runs.

A results file can come from anywhere: a teammate's CI artifact, the results branch, a shard.
DuckDB keeps views, macros and column defaults as SQL that runs when they are read, and a view
named ``runs`` over ``read_text('/etc/…')`` would show that file's contents wherever promptci
shows a run. So before any of its tables is queried, a database's catalog, read through DuckDB's
own system functions (which run nothing stored in the file), must equal the catalog that
promptci's migrations create at the version it claims: the same tables with the same columns,
types and defaults, the same indexes, and no view, macro, sequence, type or schema besides.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import InputError
from .migrations import MIGRATIONS, MIGRATIONS_TABLE
from .records import Quoted, sql

# Each object kind as DuckDB lists it: what it is called, and the SQL that defines it.
_LISTINGS = {
    "table": "SELECT table_name, sql FROM duckdb_tables() WHERE database_name = $1",
    "view": "SELECT view_name, sql FROM duckdb_views() WHERE database_name = $1 AND NOT internal",
    "macro": (
        "SELECT function_name, coalesce(macro_definition, '') FROM duckdb_functions()"
        " WHERE database_name = $1 AND NOT internal"
    ),
    "sequence": "SELECT sequence_name, coalesce(sql, '') FROM duckdb_sequences() WHERE database_name = $1",
    "type": "SELECT type_name, logical_type FROM duckdb_types() WHERE database_name = $1 AND NOT internal",
    "index": "SELECT index_name, coalesce(sql, '') FROM duckdb_indexes() WHERE database_name = $1",
    "schema": "SELECT schema_name, '' FROM duckdb_schemas() WHERE database_name = $1 AND schema_name <> 'main'",
}


def connection_config(*, external: bool) -> dict[str, Any]:
    """DuckDB settings for a results database: extensions are never loaded or installed on
    their own, and without ``external`` no SQL may read or write a file or the network. Only
    a store that exports or imports Parquet, or attaches a checked shard, needs ``external``."""
    return {
        "autoload_known_extensions": False,
        "autoinstall_known_extensions": False,
        "allow_community_extensions": False,
        "enable_external_access": external,
    }


class CatalogObject(NamedTuple):
    kind: str
    name: str
    sql: str


def catalog(db: Any, database: str) -> frozenset[CatalogObject]:
    """Every object of one attached database, as DuckDB's system functions list it."""
    found: set[CatalogObject] = set()
    for kind, query in _LISTINGS.items():
        for name, text in db.execute(query, [database]).fetchall():
            found.add(CatalogObject(kind, str(name), str(text)))
    return frozenset(found)


@cache
def expected(version: int) -> frozenset[CatalogObject]:
    """The catalog promptci's own migrations create, up to ``version``."""
    import duckdb

    db = duckdb.connect(":memory:", config=connection_config(external=False))
    try:
        db.execute(MIGRATIONS_TABLE)
        for number, _name, script in MIGRATIONS:
            if number <= version:
                db.execute(script)
        return catalog(db, "memory")
    finally:
        db.close()


def stored_version(db: Any, database: str) -> int:
    """The newest migration a checked database records; read only once ``schema_migrations``
    is known to be a base table."""
    row = db.execute(sql("SELECT max(version) FROM $db.main.schema_migrations", db=Quoted(database))).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def check(db: Any, database: str, path: Path) -> int:
    """Refuse a database whose catalog is not promptci's at the version it claims; return that
    version (0 for an empty file). Nothing stored in the file runs before this passes."""
    found = catalog(db, database)
    if not found:
        return 0
    tables = {o.name for o in found if o.kind == "table"}
    if "schema_migrations" not in tables:
        refusal = "not a promptci results database (it has other tables or objects)"
        if any(o.name == "schema_migrations" for o in found):
            refusal = "results database's `schema_migrations` is not a table"
        raise InputError(
            f"{refusal}; refusing to read it, and it was not modified",
            path=path,
            hint="point `db:` in promptci.yaml at another file",
        )
    version = stored_version(db, database)
    newest = MIGRATIONS[-1][0]
    if version > newest:
        raise InputError(
            f"results database is at schema version {version}, newer than this promptci knows ({newest})",
            path=path,
            hint="upgrade promptci",
        )
    want = expected(version)
    extra = sorted(found - want, key=_runs_first)
    missing = sorted(want - found, key=_runs_first)
    if extra or missing:
        raise InputError(
            f"{_difference(extra, missing, version)}; refusing to read it, and it was not modified",
            path=path,
            hint="results files are data: only promptci's own tables are read",
        )
    return version


def _runs_first(o: CatalogObject) -> tuple[int, str, str]:
    """What can run (a view, a macro) is named before what is merely extra."""
    return (list(_LISTINGS).index(o.kind) if o.kind != "table" else len(_LISTINGS), o.name, o.sql)


def _difference(extra: list[CatalogObject], missing: list[CatalogObject], version: int) -> str:
    names_missing = {(o.kind, o.name) for o in missing}
    for o in extra:
        if (o.kind, o.name) in names_missing:
            return f"results database's {o.kind} `{_shown(o.name)}` differs from promptci's schema {version}"
    if extra:
        o = extra[0]
        return f"results database holds a {o.kind} `{_shown(o.name)}` that promptci's schema {version} does not"
    o = missing[0]
    return f"results database lacks the {o.kind} `{_shown(o.name)}` of promptci's schema {version}"


def _shown(name: str) -> str:
    from ..redact import clip

    return clip(name, 60)
