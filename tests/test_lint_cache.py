"""The lint cache: per-file facts reused by content hash, cross-file checks always rerun."""

from __future__ import annotations

import json
import subprocess
import sys

from promptci.lint import lint
from promptci.project import Project

from .conftest import Repo

CACHE = ".promptci/cache/lint.json"


def _report(repo: Repo) -> list[str]:
    return [str(d) for d in lint(Project.discover(repo.path)).diagnostics]


def test_warm_run_reports_the_same_and_loads_neither_jinja_nor_git(repo: Repo) -> None:
    repo.write("prompts/w.yaml", "name: w\ntemplate: '{{ a }}'\nvariables: {b: string}\n")
    repo.run("label", "set", "sentiment", "production")
    cold = _report(repo)
    assert (repo.path / CACHE).is_file()
    assert _report(repo) == cold and len(cold) == 2
    code = (
        "import sys; from promptci.cli import main; main(['lint']); "
        "print('loaded:' + ','.join(m for m in ('jinja2', 'git', 'promptci.evals.suite') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=repo.path, capture_output=True, text=True)
    *diagnostics, loaded = out.stdout.splitlines()
    assert loaded == "loaded:"
    assert diagnostics == cold


def test_an_edit_is_seen(repo: Repo) -> None:
    assert _report(repo) == []
    repo.write("prompts/sentiment.yaml", "name: sentiment\ntemplate: '{{ review }'\nvariables: {review: string}\n")
    assert _report(repo) == ["prompts/sentiment.yaml:2:11: error: template syntax: unexpected '}' [jinja]"]


def test_cross_file_checks_rerun_when_another_file_changes(repo: Repo) -> None:
    assert _report(repo) == []
    (repo.path / "prompts/sentiment.yaml").unlink()  # the suite, unchanged and cached, now names nothing
    assert _report(repo) == [
        "evals/sentiment.yaml:3:11: error: suite names prompt 'sentiment', which does not exist [unknown-prompt]"
    ]


def test_a_damaged_cache_is_rebuilt(repo: Repo) -> None:
    repo.write("prompts/w.yaml", "name: w\ntemplate: '{{ a }}'\n")
    expected = _report(repo)
    (repo.path / CACHE).write_text("{not json")
    assert _report(repo) == expected
    assert json.loads((repo.path / CACHE).read_text())["files"]


def test_a_foreign_cache_format_is_ignored(repo: Repo) -> None:
    repo.write("prompts/w.yaml", "name: w\ntemplate: '{{ a }}'\n")
    expected = _report(repo)
    data = json.loads((repo.path / CACHE).read_text())
    for entry in data["files"].values():
        entry["facts"]["found"] = []
    data["format"] = "0:old"
    (repo.path / CACHE).write_text(json.dumps(data))
    assert _report(repo) == expected


def test_labels_are_checked_again_when_not_known_good(repo: Repo) -> None:
    repo.run("label", "set", "sentiment", "production")
    assert _report(repo) == []
    labels = (repo.path / "labels.yaml").read_text()
    repo.write("labels.yaml", labels.replace("production", "staging").replace(labels.split("'")[1], "ab" * 20))
    assert _report(repo) == [
        "labels.yaml:4:3: error: label 'sentiment@staging' points at ababababab, which is not a commit in this"
        " repository [label-target]"
    ]
