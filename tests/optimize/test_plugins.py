"""Methods as plugins: the registry, --set, and a toy method installed as its own distribution."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from promptci.errors import InputError
from promptci.optimize import methods
from promptci.optimize.hygiene import Hygiene

from ..conftest import REPO_ROOT, Repo
from .conftest import add_task

TOY = REPO_ROOT / "tests/fixtures/toy_method"


def test_every_builtin_method_declares_itself() -> None:
    assert methods.builtin_names() == ["catalyst", "demos", "gepa", "gpo", "greater", "opro", "textgrad"]
    for name in methods.builtin_names():
        cls = methods.get(name)
        assert cls.name == name and cls.description and cls.default_steps(16) >= 1
        assert methods.configure(name, {}) == cls.Config().model_dump(mode="json")  # every option has a default
    assert methods.get("gpo").default_steps(20) == 9  # 3 epochs of 3 minibatches of 8


def test_options_are_checked_by_the_methods_config() -> None:
    assert methods.configure("greater", {"topk": 10})["topk"] == 10
    with pytest.raises(methods.OptionError, match=r"greater\.topk: Input should be greater than or equal to 1") as bad:
        methods.configure("greater", {"topk": 0})
    assert bad.value.key == "topk"
    with pytest.raises(methods.OptionError, match=r"gpo\.topk: Extra inputs are not permitted") as extra:
        methods.configure("gpo", {"topk": 10})
    assert extra.value.hint is not None and "k, edit_initial, edit_final" in extra.value.hint
    with pytest.raises(methods.OptionError, match="unknown method 'sgd'") as unknown:
        methods.configure("sgd", {})
    assert unknown.value.key is None


def test_set_items_are_parsed_as_yaml_scalars_for_the_chosen_method() -> None:
    parsed = methods.parse_sets(
        "greater", ["greater.topk=40", "checkpointing=true", "extractor=So the answer is", "greater.batch=0.5"]
    )
    assert parsed == {"topk": 40, "checkpointing": True, "extractor": "So the answer is", "batch": 0.5}
    with pytest.raises(InputError, match="an option of 'greater', but the method is 'gpo'"):
        methods.parse_sets("gpo", ["greater.topk=40"])
    with pytest.raises(InputError, match="bad --set 'topk'"):
        methods.parse_sets("gpo", ["topk"])


def test_a_renamed_flag_names_its_new_spelling(repo: Repo) -> None:
    result = repo.run("optimize", "sentiment", "--suite", "sentiment", "--topk", "20")
    assert result.code == 2
    assert "--topk is now a method option: --set greater.topk=N" in result.err
    result = repo.run("optimize", "sentiment", "--suite", "sentiment", "--catalyst-block", "3")
    assert result.code == 2 and "--set catalyst.block=N" in result.err


def test_list_methods_shows_each_option_with_its_default(repo: Repo) -> None:
    result = repo.run("optimize", "--list-methods")
    assert result.code == 0
    assert "greater: one token at a time" in result.out
    assert "--set greater.topk=…  top-k next tokens per case from which candidates are drawn (default 40)" in result.out
    assert "--set catalyst.block=…" in result.out and "default steps: 3 epochs" in result.out


@pytest.fixture(scope="module")
def toy_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy method installed, as its own distribution, into a directory of its own."""
    target = tmp_path_factory.mktemp("toy-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(target), str(TOY)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert list(target.glob("promptci_toy_method-*.dist-info"))
    return target


def promptci(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO_ROOT)])}
    return subprocess.run(
        [sys.executable, "-m", "promptci", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def test_an_installed_method_is_listed_without_being_imported(toy_site: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(toy_site), str(REPO_ROOT)])}
    script = (
        "import sys\nfrom promptci.cli import main\ntry:\n    main(['optimize', '--help'])\n"
        "except SystemExit:\n    pass\nprint('toy imported:', 'promptci_toy' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert "--method [auto|catalyst|demos|gepa|gpo|greater|opro|textgrad|toy|A+B]" in done.stdout, (
        done.stdout + done.stderr
    )
    assert "toy imported: False" in done.stdout


@pytest.mark.slow
def test_an_installed_method_runs_end_to_end(toy_site: Path, repo: Repo) -> None:
    add_task(repo, "navigate", 20)
    listed = promptci(toy_site, "optimize", "--list-methods", cwd=repo.path)
    assert "toy: appends one sentence per step" in listed.stdout, listed.stderr
    assert "--set toy.sentences=…" in listed.stdout
    done = promptci(
        toy_site, "optimize", "navigate", "--suite", "navigate", "--method", "toy", "--set",
        'toy.sentences=["Reply in one word."]', "--dry-run", "--format", "json", cwd=repo.path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["method"] == "toy" and result["test"]["n"] == 12
    import duckdb

    con = duckdb.connect(str(repo.path / ".promptci/results.duckdb"), read_only=True)
    rows = con.execute("SELECT step, status, text FROM trajectory ORDER BY step").fetchall()
    settings = json.loads(con.execute("SELECT settings FROM optimizations").fetchone()[0])  # type: ignore[index]
    assert [r[0] for r in rows] == [0, 1, 2]  # the toy's own default: two steps
    assert rows[1][2].endswith("Reply in one word.") and rows[2][2].count("Reply in one word.") in (1, 2)
    assert settings["method"] == "toy" and settings["config"] == {
        "sentences": ["Reply in one word."],
        "hygiene": Hygiene().model_dump(),
    }
    bad = promptci(
        toy_site, "optimize", "navigate", "--suite", "navigate", "--method", "toy", "--set", "toy.sentences=[]",
        cwd=repo.path,
    )  # fmt: skip
    assert bad.returncode == 2 and "toy.sentences: List should have at least 1 item" in bad.stderr


def test_settings_stored_before_methods_had_options_still_resume() -> None:
    """A flat settings record (every method's knobs side by side, prefixed) reads back with the
    method's own options under their new names, so a resume continues as it started."""
    from promptci.optimize.settings import Settings

    flat = {
        "method": "greater", "steps": 5, "candidates": 8, "split": [0.2, 0.2, 0.6], "seed": 0, "position": None,
        "exemplars": 3, "temperature": 1.0, "max_chars": 500, "optimizer_max_tokens": 120, "budget": {},
        "task_model": None, "optimizer_model": None, "top": 20, "k": 3, "edit_initial": 50, "edit_final": 10,
        "greater_examples": 4, "greater_reasoning_tokens": 24, "greater_topk": 30, "greater_batch": 2,
        "greater_checkpointing": False, "extractor": None, "answer_format": None, "catalyst_block": 5,
        "device": None, "dtype": None,
    }  # fmt: skip
    settings = Settings.from_json(json.dumps(flat))
    assert (settings.method, settings.steps, settings.split) == ("greater", 5, (0.2, 0.2, 0.6))
    known = methods.get("greater").Config.model_fields
    own = methods.configure("greater", {k: v for k, v in settings.config.items() if k in known})
    assert own == {
        "hygiene": Hygiene().model_dump(), "examples": 4, "reasoning_tokens": 24, "topk": 30, "batch": 2, "checkpointing": False, "extractor": None,
        "answer_format": None,
    }  # fmt: skip
    assert Settings.from_json(Settings(method="gpo", steps=3, config={"k": 2}).to_json()).config == {"k": 2}
