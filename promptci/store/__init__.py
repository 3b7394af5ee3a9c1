"""The results database: the only package that imports duckdb, and the only one with SQL.

- :mod:`.records`: the rows it holds, and how names and placeholders enter a statement;
- :mod:`.core`: opening and checking the file, migrations, runs, results, optimizations, the cache;
- :mod:`.compare`: each side of a comparison in a temp table, and the two paired case by case;
- :mod:`.history`: score history per prompt version;
- :mod:`.merge`: merging other results databases (CI shards);
- :mod:`.parquet`: runs and optimizations as Parquet file sets, published and read back;
- :mod:`.ab`: outcome logs of released versions, and the looks at each A/B comparison;
- :mod:`.remote`: published sets read in place, as views over the local tables;
- :mod:`.browse`: paged reads for the viewer.

The schema changes only through numbered migrations (:mod:`.migrations`), each recorded in
``schema_migrations`` when applied. A file that is not a promptci database, or is damaged,
is refused and never modified (:mod:`.dbfile`).
"""

from __future__ import annotations

from .ab import OutcomeQueries
from .batches import BatchQueries, BatchRecord
from .browse import BrowseQueries, Page
from .compare import SIDE_COLUMNS, CompareQueries
from .history import HistoryQueries
from .merge import MergeCounts, MergeQueries
from .records import (
    CREDIT_COLUMNS,
    RESULT_COLUMNS,
    STEP_COLUMNS,
    TRAJECTORY_COLUMNS,
    CachedResponse,
    CreditRow,
    ResultRow,
    StepRow,
    TrajectoryRow,
    dumps,
    now,
)
from .remote import RemoteQueries

__all__ = [
    "CREDIT_COLUMNS",
    "RESULT_COLUMNS",
    "SIDE_COLUMNS",
    "STEP_COLUMNS",
    "TRAJECTORY_COLUMNS",
    "BatchRecord",
    "BrowseQueries",
    "CachedResponse",
    "CreditRow",
    "MergeCounts",
    "Page",
    "ResultRow",
    "StepRow",
    "Store",
    "TrajectoryRow",
    "dumps",
    "now",
]


class Store(CompareQueries, HistoryQueries, MergeQueries, RemoteQueries, OutcomeQueries, BrowseQueries, BatchQueries):
    """An open results database. Use as a context manager; read-only opens never wait for a writer."""
