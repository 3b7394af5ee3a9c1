"""All git access. The only module that imports GitPython, and it does so lazily."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import GitError, NotFoundError


@dataclass(frozen=True)
class Commit:
    """A commit as the log shows it. ``path`` is the file's path in that commit, if asked."""

    sha: str
    author: str
    email: str
    date: str  # ISO 8601 with offset
    message: str  # the subject line
    path: str | None = None

    @property
    def short(self) -> str:
        return self.sha[:10]


_LOG_FORMAT = "%x1e%H%x1f%an%x1f%ae%x1f%aI%x1f%s"


class Repo:
    """A git working tree. Paths passed in and out are relative to its top level."""

    def __init__(self, path: str | Path) -> None:
        import git

        try:
            self._repo = git.Repo(path, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise GitError(f"not a git repository: {path}", hint="run `git init` and commit your prompts") from None
        if self._repo.working_tree_dir is None:
            raise GitError(f"bare repository has no working tree: {path}")
        self.toplevel = Path(self._repo.working_tree_dir).resolve()

    def relpath(self, path: Path) -> str:
        """An absolute path inside the working tree as git names it."""
        return path.resolve().relative_to(self.toplevel).as_posix()

    def resolve(self, rev: str) -> str:
        """The full sha of the commit ``rev`` names (sha, tag, branch, ``HEAD~2`` …)."""
        try:
            return str(self._repo.git.rev_parse("--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"))
        except _command_error():
            raise NotFoundError(f"unknown revision '{rev}'", hint="use a sha, tag, branch or HEAD~N") from None

    def has_commits(self) -> bool:
        return bool(self._repo.head.is_valid())

    def head(self) -> str | None:
        return self._repo.head.commit.hexsha if self.has_commits() else None

    def branch(self) -> str | None:
        return None if self._repo.head.is_detached else self._repo.active_branch.name

    def read(self, sha: str, path: str) -> str | None:
        """The text of ``path`` at commit ``sha``, or None where it does not exist."""
        from .files import MAX_TEXT_BYTES, decode

        shown = f"{path}@{sha[:12]}"
        data = self.read_bytes(sha, path, limit=MAX_TEXT_BYTES, shown=shown)
        return decode(data, shown) if data is not None else None

    def list_files(self, sha: str, directory: str) -> list[str]:
        """Paths of the files under ``directory`` at commit ``sha``, sorted."""
        tree = self._repo.commit(sha).tree
        if directory not in ("", "."):
            try:
                tree = tree / directory
            except KeyError:
                return []
        return sorted(str(item.path) for item in tree.traverse() if item.type == "blob")  # type: ignore[union-attr]

    def describe(self, sha: str) -> Commit:
        """Author, date and subject of one commit."""
        c = self._repo.commit(sha)
        return Commit(c.hexsha, str(c.author.name), str(c.author.email), c.authored_datetime.isoformat(), c.summary)  # type: ignore[arg-type]

    def log(self, path: str, rev: str = "HEAD", follow: bool = True, max_count: int | None = None) -> list[Commit]:
        """The commits that changed ``path``, newest first, following renames."""
        if not self.has_commits():
            return []
        args = [f"--format={_LOG_FORMAT}", "--name-only"]
        if follow:
            args.append("--follow")
        if max_count:
            args.append(f"--max-count={max_count}")
        out = self._repo.git.log(*args, "--end-of-options", rev, "--", path)
        commits = []
        for record in out.split("\x1e")[1:]:
            header, _, names = record.partition("\n")
            sha, author, email, date, message = header.split("\x1f")
            files = [n for n in names.split("\n") if n.strip()]
            commits.append(Commit(sha, author, email, date, message, files[0] if files else path))
        return commits

    def last_change(self, path: str, rev: str = "HEAD") -> Commit | None:
        """The newest commit at or before ``rev`` that changed ``path``."""
        found = self.log(path, rev, follow=False, max_count=1)
        return found[0] if found else None

    def last_change_of(self, paths: list[str], rev: str = "HEAD") -> str | None:
        """The newest commit at or before ``rev`` that changed any of ``paths``."""
        if not self.has_commits():
            return None
        return self._repo.git.log("--format=%H", "--max-count=1", "--end-of-options", rev, "--", *paths).strip() or None

    def is_ancestor(self, a: str, b: str) -> bool:
        """Whether commit ``a`` is an ancestor of ``b`` (False where either is unknown)."""
        try:
            self._repo.git.merge_base("--is-ancestor", "--end-of-options", a, b)
        except _command_error():
            return False
        return True

    def is_dirty(self, path: str) -> bool:
        """Whether ``path`` differs from HEAD in the index or the working tree, or is untracked."""
        if not self.has_commits():
            return True
        return bool(self._repo.git.status("--porcelain", "--", path).strip())

    def merge_base(self, a: str, b: str = "HEAD") -> str | None:
        try:
            return str(self._repo.git.merge_base("--end-of-options", a, b)).strip() or None
        except _command_error():
            return None

    def default_branch(self) -> str | None:
        """origin's HEAD, else a local main or master."""
        try:
            ref = str(self._repo.git.symbolic_ref("--quiet", "refs/remotes/origin/HEAD")).strip()
            return ref.removeprefix("refs/remotes/")
        except _command_error():
            pass
        for name in ("main", "master", "origin/main", "origin/master"):
            try:
                self.resolve(name)
                return name
            except NotFoundError:
                continue
        return None

    def changed_since(self, base: str) -> set[str]:
        """Paths that differ between ``base`` and the working tree: committed, staged,
        unstaged and untracked changes alike (deleted and renamed files included)."""
        names = str(self._repo.git.diff("--name-only", "--no-renames", "--end-of-options", base, "--")).splitlines()
        untracked = str(self._repo.git.ls_files("--others", "--exclude-standard")).splitlines()
        return {n for n in names + untracked if n}

    def read_bytes(self, sha: str, path: str, *, limit: int | None = None, shown: str | None = None) -> bytes | None:
        """The bytes of ``path`` at commit ``sha``, or None where no file is there.

        A blob over ``limit`` bytes is refused before it is read.
        """
        try:
            blob = self._repo.commit(sha).tree / path
        except KeyError:
            return None
        if blob.type != "blob":
            return None
        if limit is not None:
            from .files import check_size

            check_size(blob.size, shown or path, limit=limit)
        data: bytes = blob.data_stream.read()
        return data

    def extract(self, sha: str, paths: list[str], target: Path) -> None:
        """The files ``paths`` of commit ``sha`` written under ``target`` (one ``git archive``)."""
        import io
        import tarfile

        if not paths:
            return
        data = self._repo.git.archive("--format=tar", "--end-of-options", sha, *paths, stdout_as_string=False)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(target, filter="data")

    def add_worktree(self, path: Path, sha: str) -> None:
        """Check ``sha`` out, detached, in a new worktree at ``path``."""
        try:
            self._repo.git.worktree("add", "--detach", "--quiet", "--end-of-options", str(path), sha)
        except _command_error() as exc:
            raise GitError(f"cannot check out {sha[:10]}: {_stderr(exc)}") from None

    def remove_worktree(self, path: Path) -> None:
        try:
            self._repo.git.worktree("remove", "--force", str(path))
        except _command_error():
            self._repo.git.worktree("prune")  # the directory went first; forget it

    def fetch_branch(self, remote: str, branch: str) -> str | None:
        """Fetch ``remote``'s ``branch``; its tip sha, or None where the remote has no such branch."""
        _check_remote_and_branch(remote, branch)
        try:
            self._repo.git.fetch(
                "--quiet", "--end-of-options", remote, f"+refs/heads/{branch}:{_tracking(remote, branch)}"
            )
        except _command_error() as exc:
            if "couldn't find remote ref" in str(exc).lower():
                return None
            raise GitError(f"git fetch {remote} {branch} failed: {_stderr(exc)}") from None
        return self.resolve(_tracking(remote, branch))

    def commit_file_on_new_branch(
        self, branch: str, path: str, content: bytes, message: str, base: str = "HEAD"
    ) -> str:
        """Create ``branch`` at a commit of ``base`` plus ``path`` set to ``content``."""
        return self.commit_files_on_new_branch(branch, {path: content}, message, base)

    def commit_files_on_new_branch(self, branch: str, files: dict[str, bytes], message: str, base: str = "HEAD") -> str:
        """Create ``branch`` at one commit of ``base`` plus each path of ``files`` set to its content.

        The working tree, the real index and the current branch are untouched: a dirty
        checkout does not matter. Refuses an existing branch.
        """
        import tempfile

        parent = self.resolve(base)
        ref = f"refs/heads/{branch}"
        if self._ref_exists(ref):
            raise GitError(f"branch {branch} already exists", hint="delete it or let promptci pick a new id")
        with tempfile.TemporaryDirectory() as tmp:
            paths = {}
            for i, (path, content) in enumerate(sorted(files.items())):
                paths[path] = Path(tmp) / f"blob{i}"
                paths[path].write_bytes(content)
            commit = self.commit_files(paths, parent, message)
        self._repo.git.update_ref(ref, commit, "0" * 40)  # fails if someone created it meanwhile
        return commit

    def commit_files(
        self, files: dict[str, Path], parent: str | None, message: str, remove: tuple[str, ...] = ()
    ) -> str:
        """A commit on top of ``parent`` (None: a first commit) whose tree is the parent's, plus each
        path of ``files`` set to that file's content, less ``remove``. A temporary index is used,
        so the working tree, the real index and every branch are untouched."""
        import os
        import tempfile

        blobs = {path: str(self._repo.git.hash_object("-w", str(file))).strip() for path, file in files.items()}
        with (
            tempfile.TemporaryDirectory() as tmp,
            self._repo.git.custom_environment(GIT_INDEX_FILE=os.path.join(tmp, "index")),
        ):
            if parent:
                self._repo.git.read_tree(parent)
            if remove:
                self._repo.git.update_index("--force-remove", "--", *remove)
            for path, blob in sorted(blobs.items()):
                self._repo.git.update_index("--add", "--cacheinfo", f"100644,{blob},{path}")
            tree = str(self._repo.git.write_tree()).strip()
        return str(self._repo.git.commit_tree(tree, *(["-p", parent] if parent else []), "-m", message)).strip()

    def tree_files(self, sha: str) -> list[tuple[str, int]]:
        """(path, size in bytes) of every regular file at commit ``sha`` (no links, no submodules)."""
        out = str(self._repo.git.ls_tree("-r", "-l", "-z", "--end-of-options", sha))
        found = []
        for entry in out.split("\0"):
            if not entry:
                continue
            meta, _, path = entry.partition("\t")
            parts = meta.split()
            if len(parts) == 4 and parts[0] in ("100644", "100755") and parts[1] == "blob" and parts[3].isdigit():
                found.append((path, int(parts[3])))
        return found

    def _ref_exists(self, ref: str) -> bool:
        try:
            self._repo.git.show_ref("--verify", "--quiet", ref)
        except _command_error():
            return False
        return True

    def push(self, remote: str, sha: str, branch: str) -> bool:
        """Push ``sha`` to ``remote``'s ``branch``, never forcing; False when the remote moved on."""
        return self._push(remote, sha, branch)

    def push_with_lease(self, remote: str, sha: str, branch: str, expected: str | None) -> bool:
        """Point ``remote``'s ``branch`` at ``sha`` only if it is still at ``expected`` (None: absent).

        The lease makes replacing our own earlier commit safe: if anyone pushed to the
        branch since it was read, the push is refused (False) and nothing is overwritten.
        """
        return self._push(remote, sha, branch, f"--force-with-lease=refs/heads/{branch}:{expected or ''}")

    def _push(self, remote: str, sha: str, branch: str, *options: str) -> bool:
        _check_remote_and_branch(remote, branch)
        try:
            self._repo.git.push("--quiet", *options, "--end-of-options", remote, f"{sha}:refs/heads/{branch}")
        except _command_error() as exc:
            text = str(exc).lower()
            if any(s in text for s in ("non-fast-forward", "fetch first", "rejected", "stale info")):
                return False
            raise GitError(f"git push {remote} {branch} failed: {_stderr(exc)}") from None
        return True

    def commits_not_in(self, tip: str, exclude: str) -> list[tuple[str, str, str]]:
        """(sha, author, full message) of the commits reachable from ``tip`` but not ``exclude``."""
        out = str(
            self._repo.git.log("--format=%x1e%H%x1f%an <%ae>%x1f%B", "--end-of-options", tip, f"^{exclude}", "--")
        )
        found = []
        for record in out.split("\x1e")[1:]:
            sha, author, message = record.split("\x1f", 2)
            found.append((sha, author, message.strip()))
        return found

    def messages_touching(self, path: str, base: str, rev: str = "HEAD") -> list[str]:
        """The full messages of the commits in ``base..rev`` that changed ``path``."""
        out = str(self._repo.git.log("--format=%x1e%B", "--end-of-options", f"{base}..{rev}", "--", path))
        return [m.strip() for m in out.split("\x1e")[1:]]

    def find_message(self, text: str) -> tuple[str, str] | None:
        """(sha, full message) of the newest commit on any ref whose message contains ``text``."""
        out = str(self._repo.git.log("--all", "-F", f"--grep={text}", "-n", "1", "--format=%H%x1f%B"))
        if not out.strip():
            return None
        sha, message = out.split("\x1f", 1)
        return sha.strip(), message.strip()

    def tree(self, sha: str) -> str:
        return str(self._repo.git.rev_parse("--verify", "--end-of-options", f"{sha}^{{tree}}"))

    def parents(self, sha: str) -> list[str]:
        return str(self._repo.git.log("-1", "--format=%P", "--end-of-options", sha, "--")).split()

    def commit_only(self, paths: list[str], message: str) -> Commit:
        """Commit exactly ``paths`` (staging them), leaving anything else staged as it was.
        A commit that fails (a hook refuses it) leaves the index as it was before, too."""
        staged = self._repo.git.ls_files("-s", "--", *paths).splitlines()  # "mode sha stage\tpath"
        try:
            self._repo.git.add("--", *paths)
            self._repo.git.commit("-m", message, "--only", "--", *paths)
        except _command_error() as exc:
            self._restore_index(paths, staged)
            raise GitError(
                f"git commit failed: {_hook_or_stderr(exc)}", hint="nothing was committed or staged"
            ) from None
        return self.log(paths[0], follow=False, max_count=1)[0]

    def _restore_index(self, paths: list[str], staged: list[str]) -> None:
        entries = {line.split("\t", 1)[1]: line.split()[:2] for line in staged if "\t" in line}
        for path in paths:
            if path in entries:
                mode, sha = entries[path]
                self._repo.git.update_index("--cacheinfo", f"{mode},{sha},{path}")
            else:
                self._repo.git.rm("--cached", "-q", "--ignore-unmatch", "--", path)


def init_repo(path: Path) -> None:
    """Create an empty repository at ``path``."""
    import git

    git.Repo.init(path)


def _check_remote_and_branch(remote: str, branch: str) -> None:
    from .errors import InputError
    from .names import check_branch, check_remote

    try:
        check_remote(remote)
        check_branch(branch)
    except ValueError as exc:
        raise InputError(f"refusing remote {remote!r}, branch {branch!r}: {exc}") from None


def _tracking(remote: str, branch: str) -> str:
    """The local ref a fetched branch is kept at: under the remote's name, or, for a URL or a
    path, under a digest of it (a URL is no part of a ref name)."""
    import hashlib

    from .names import is_remote_name

    if is_remote_name(remote):
        return f"refs/remotes/{remote}/{branch}"
    return f"refs/promptci/remotes/{hashlib.sha256(remote.encode()).hexdigest()[:16]}/{branch}"


def _command_error() -> type[Exception]:
    from git.exc import GitCommandError

    error: type[Exception] = GitCommandError
    return error


def _hook_or_stderr(exc: Exception) -> str:
    """Why git refused a commit, in one line: what git or its hook printed, cut short and inert."""
    from .redact import clip

    return clip(_stderr(exc), 200) or "git exited with an error and said nothing"


def _stderr(exc: Exception) -> str:
    text = str(getattr(exc, "stderr", "") or exc).strip()
    return " ".join(text.replace("stderr:", "").split())
