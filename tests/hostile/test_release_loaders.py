"""Property tests over the runtime's loaders: whatever bytes a bundle or an outcome log holds, the
runtime raises a PromptciError or loads it, and a report reads every good line and names each
bad one by file and line."""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import promptci
from promptci.errors import PromptciError
from promptci.prompts.spec import PromptSpec
from promptci.release.ab import load_logs
from promptci.store import Store
from tests.conftest import Repo
from tests.hostile.conftest import FUZZ

JSONISH = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@pytest.fixture
def bundle(repo: Repo) -> bytes:
    head = repo.git("rev-parse", "HEAD")
    assert repo.run("label", "set", "sentiment", "production", head).code == 0
    assert repo.run("bundle", "-o", "bundle.json").code == 0
    return (repo.path / "bundle.json").read_bytes()


def test_any_bytes_as_a_bundle_load_or_raise_a_promptci_error(bundle: bytes) -> None:
    @FUZZ
    @given(
        cut=st.integers(0, len(bundle)),
        flips=st.lists(st.tuples(st.integers(0, len(bundle) - 1), st.integers(1, 255)), max_size=4),
        junk=st.binary(max_size=200),
    )
    def run(cut: int, flips: list[tuple[int, int]], junk: bytes) -> None:
        data = bytearray(bundle[:cut] + junk)
        for where, mask in flips:
            if where < len(data):
                data[where] ^= mask
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bundle.json"
            path.write_bytes(bytes(data))
            try:
                prompt = promptci.load("sentiment", bundle=path)
            except PromptciError:
                return
            # It loaded: then it is the same bundle (a flip in a space, say), never a damaged one.
            assert json.loads(bytes(data)) == json.loads(bundle)
            assert prompt.render(review="fine")

    run()


def test_a_bundle_whose_digest_was_forged_over_any_content_is_refused_cleanly(bundle: bytes) -> None:
    """A bundle edited by hand and given a matching digest: whatever it holds, a clean error."""
    from promptci.runtime import digest

    body = json.loads(bundle)
    version = next(iter(body["prompts"]["sentiment"]["versions"]))

    @FUZZ
    @given(prompt=JSONISH)
    def run(prompt: object) -> None:
        forged = json.loads(bundle)
        forged["prompts"]["sentiment"]["versions"][version]["prompt"] = prompt
        forged["digest"] = digest(forged)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bundle.json"
            path.write_text(json.dumps(forged))
            try:
                loaded = promptci.load("sentiment", bundle=path)
            except PromptciError:
                return  # refused cleanly
            # It loaded: then what it holds is a prompt promptci itself would accept, and its render
            # gives messages or a clean error.
            PromptSpec.model_validate(prompt)
            with contextlib.suppress(PromptciError):
                assert isinstance(loaded.render(review="fine"), list)

    run()


def test_any_bytes_in_an_outcome_log_are_read_line_by_line(tmp_path: Path) -> None:
    good = json.dumps({"v": 1, "ts": "t", "prompt": "p", "label": "l", "version": "v", "outcome": 1}) + "\n"

    with Store(tmp_path / "results.duckdb") as store:

        @FUZZ
        @given(junk=st.binary(max_size=300), before=st.integers(0, 3), after=st.integers(0, 3))
        def run(junk: bytes, before: int, after: int) -> None:
            path = tmp_path / "log.jsonl"
            lines = [good.replace('"t"', f'"t{i}"') for i in range(before + after)]  # each line its own outcome
            path.write_bytes("".join(lines[:before]).encode() + junk + b"\n" + "".join(lines[before:]).encode())
            store.db.execute("DELETE FROM outcomes")
            loaded = load_logs(store, [path])
            assert loaded.new >= before + after
            assert loaded.new + loaded.refused <= before + after + 1 + junk.count(b"\n")
            assert all(p.startswith(f"{path}:") for p in loaded.problems)

        run()
