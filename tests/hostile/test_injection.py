"""A remote or branch from promptci.yaml or a flag reaches git only as data: never an option, never
a transport helper that runs a command."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptci.names import check_branch, check_remote
from tests.conftest import Repo, git
from tests.hostile.conftest import fail_every_case, one_line

# Each would run `touch MARK` if git read it as it is written.
HOSTILE_REMOTES = [
    "--upload-pack=touch {mark} #",
    "--receive-pack=touch {mark} #",
    "-uploadpack=touch {mark}",
    "--exec=touch {mark}",
    "--config=core.sshCommand=touch {mark}",
    "-c core.sshCommand=touch {mark}",
    "ext::sh -c touch% {mark}",
    "ext::touch {mark}",
    "fd::0",
    "EXT::sh -c 'touch {mark}'",
    "remote-ext::touch {mark}",
    "ssh://-oProxyCommand=touch {mark}/x",
    "ftp://host/{mark}",
    "javascript://x%0atouch {mark}",
    "origin\ntouch {mark}",
    "origin\x00--upload-pack=touch {mark}",
]
HOSTILE_BRANCHES = ["--output=/tmp/x", "-D", "a..b", "x.lock", "/abs", "a//b", ".hidden", "a b", "refs/../../x", "a\tb"]


@pytest.mark.parametrize("value", HOSTILE_REMOTES)
def test_a_hostile_remote_in_the_config_is_a_lint_error_and_never_runs(repo: Repo, tmp_path: Path, value: str) -> None:
    mark = tmp_path / "ran"
    quoted = (
        value.format(mark=mark).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\x00", "\\0")
    )
    repo.write("promptci.yaml", (repo.path / "promptci.yaml").read_text() + f'results:\n  remote: "{quoted}"\n')
    linted = repo.run("lint")  # a config problem is a lint error at its place, like any other
    (line,) = linted.out.splitlines()
    assert linted.code == 1 and line.startswith("promptci.yaml:") and "results.remote" in line
    pulled = repo.run("results", "pull")
    assert pulled.code == 2 and "results.remote" in one_line(pulled.err)
    assert not mark.exists()


@pytest.mark.parametrize("value", HOSTILE_REMOTES)
def test_a_hostile_remote_flag_is_refused_and_never_runs(repo: Repo, tmp_path: Path, value: str) -> None:
    mark = tmp_path / "ran"
    for verb in ("pull", "push"):
        result = repo.run("results", verb, "--remote", value.format(mark=mark))
        assert result.code == 2 and "refusing remote" in one_line(result.err)
    assert not mark.exists()


@pytest.mark.parametrize("value", HOSTILE_BRANCHES)
def test_a_hostile_branch_is_refused(repo: Repo, value: str) -> None:
    with pytest.raises(ValueError):
        check_branch(value)
    result = repo.run("results", "pull", "--branch", value)
    assert result.code == 2 and "refusing remote" in one_line(result.err)


@pytest.mark.parametrize(
    "value",
    ["origin", "upstream", "my.remote", "../remote.git", "/srv/git/results.git", "git@github.com:o/r.git",
     "https://github.com/o/r.git", "ssh://git@host:22/o/r.git", "file:///srv/r.git"],
)  # fmt: skip
def test_ordinary_remotes_are_taken(value: str) -> None:
    assert check_remote(value) == value
    with pytest.raises(ValueError):
        check_branch("")


def test_a_remote_given_as_a_path_still_pushes_and_pulls(repo: Repo, tmp_path: Path) -> None:
    """A URL or path is no ref name: its fetched tip is kept under a digest of it."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    fail_every_case(repo)  # a run to publish, with no model loaded
    repo.run("eval")
    pushed = repo.run("results", "push", "--remote", str(remote))
    assert pushed.code == 0, pushed.err
    pulled = repo.run("results", "pull", "--remote", str(remote))
    assert pulled.code == 0, pulled.err
    assert git(remote, "branch", "--list").strip("* ") == "promptci-results"
    assert "0 runs" in pulled.out + pulled.err  # it holds what this repository pushed: nothing new
