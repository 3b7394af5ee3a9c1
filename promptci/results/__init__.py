"""Results shared between machines, as immutable Parquet sets.

Every finished run is one set (``runs/<id>/``: ``results``, ``steps``, then ``runs``), every
finished optimization another (``optimizations/<id>/``), and cached answers are published in
batches named by their hash (``cache/<digest>.parquet``). Nothing published is ever rewritten,
so concurrent pushers only add different files. The destination is the ``promptci-results``
git branch by default, or any directory or fsspec URL (``results: {url: s3://bucket/prefix}``
in ``promptci.yaml``).

- :mod:`.destinations`: the branch and folders, what they hold, and adding to them;
- :mod:`.sync`: ``push``, ``pull``, and ``reading`` published sets in place.
"""

from __future__ import annotations

from pathlib import Path

from ..project import Project
from .destinations import Branch, Destination, Folder, Listing
from .sync import Pulled, Pushed, pull, push, reading

__all__ = ["Branch", "Destination", "Folder", "Listing", "Pulled", "Pushed", "destination", "pull", "push", "reading"]


def destination(
    project: Project, url: str | None = None, *, remote: str | None = None, branch: str | None = None
) -> Destination:
    """Where results go: ``url`` (a directory, relative to the repository, or an fsspec URL), else
    the configured url, else the configured git branch (``remote``/``branch`` override it)."""
    config = project.config.results
    url = url or (None if remote or branch else config.url)
    if url is None:
        from ..git import Repo

        return Branch(Repo(project.root), remote or config.remote, branch or config.branch)
    if "://" not in url:
        url = str(project.root / Path(url).expanduser())
    return Folder(url, config.options)
