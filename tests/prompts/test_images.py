"""Images in prompts: a repository image and a case's image go to the openai provider as base64 data
URLs and through LiteLLM's Anthropic route as image blocks; the content hash covers the bytes; lint
and eval refuse what is not an image, too large, or sent to a model that takes none."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

import promptci
from promptci.errors import ExitCode

from ..conftest import Repo, chat_reply, json_server, request_json


def png(width: int = 2, height: int = 1, seed: int = 0) -> bytes:
    """A real PNG image: its signature, a header, pixel data and an end chunk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes((seed + x) % 256 for x in range(width * 3)) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


DESCRIBE = """\
name: describe
model: {provider: openai, model: gpt-4o-mini}
messages:
  - role: system
    content: You describe products for {{ shop }}.
  - role: user
    content:
      - {type: text, text: "Our logo, then the customer's photo. {{ question }}"}
      - {type: image, image: img/logo.png}
      - {type: image, image: "{{ photo }}", detail: low}
variables:
  shop: string
  question: string
  photo: {type: image, description: a repository path or an https URL}
"""

SUITE = """\
prompts: [describe]
model: {{provider: {provider}, model: {model}, max_tokens: 16, params: {params}}}
scorers: [{{type: contains}}]
cases:
  - vars: {{shop: Acme, question: What is it?, photo: img/photo.png}}
    expected: mug
  - vars: {{shop: Acme, question: And this?, photo: "https://user:hunter2secret@cdn.example.com/p.png?token=abcdefgh123"}}
    expected: mug
"""


@pytest.fixture
def shop(repo: Repo) -> Repo:
    (repo.path / "img").mkdir()
    (repo.path / "img/logo.png").write_bytes(png(seed=1))
    (repo.path / "img/photo.png").write_bytes(png(3, 2, seed=2))
    repo.write("prompts/describe.yaml", DESCRIBE)
    (repo.path / "evals/sentiment.yaml").unlink()
    repo.commit("an image prompt")
    return repo


@pytest.fixture
def server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    bodies: list[dict[str, Any]] = []

    def handle(h: BaseHTTPRequestHandler) -> tuple[int, Any]:
        body = request_json(h)
        bodies.append(body)
        if h.path.endswith("/messages"):  # Anthropic's Messages API
            return 200, {
                "id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
                "content": [{"type": "text", "text": "A mug."}], "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": 900, "output_tokens": 3},
            }  # fmt: skip
        return 200, chat_reply("m", "A mug.")

    with json_server(handle) as url:
        yield url, bodies


def data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


def test_the_openai_provider_sends_repository_images_inline_and_urls_as_they_are(
    shop: Repo, server: tuple[str, list[dict[str, Any]]]
) -> None:
    url, bodies = server
    params = json.dumps({"base_url": url + "/v1", "max_retries": 0})
    shop.write("evals/describe.yaml", SUITE.format(provider="openai", model="m", params=params))
    r = shop.run("eval", "describe")
    assert r.code == ExitCode.OK, r.out + r.err
    by_question = {b["messages"][1]["content"][0]["text"]: b["messages"][1]["content"] for b in bodies}
    first = by_question["Our logo, then the customer's photo. What is it?"]
    assert first[1] == {"type": "image_url", "image_url": {"url": data_url(png(seed=1))}}
    assert first[2] == {"type": "image_url", "image_url": {"url": data_url(png(3, 2, seed=2)), "detail": "low"}}
    second = by_question["Our logo, then the customer's photo. And this?"]
    assert second[2]["image_url"]["url"] == "https://user:hunter2secret@cdn.example.com/p.png?token=abcdefgh123"
    # What is stored: each inline image as its type, sha256 and size; the URL without its credentials.
    stored = " ".join(i for (i,) in shop.sql("SELECT input FROM results"))
    assert "base64" not in stored and f"bytes={len(png(3, 2, seed=2))}" in stored
    assert "hunter2secret" not in stored and "abcdefgh123" not in stored and "cdn.example.com/p.png" in stored
    assert "hunter2secret" not in r.out + r.err
    # the image's bytes are in the request, so in its cache key: a new photo is a new request
    bodies.clear()
    assert shop.run("eval", "describe").code == ExitCode.OK and bodies == []
    (shop.path / "img/photo.png").write_bytes(png(3, 2, seed=9))
    assert shop.run("eval", "describe").code == ExitCode.OK and len(bodies) == 1


def test_litellms_anthropic_route_gets_image_blocks_with_their_media_type(
    shop: Repo, server: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, bodies = server
    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", "k" * 20)
    params = json.dumps({"base_url": url, "api_key_env": "FAKE_ANTHROPIC_KEY", "max_retries": 0})
    suite = SUITE.format(provider="litellm", model="anthropic/claude-3-5-haiku-20241022", params=params)
    shop.write("evals/describe.yaml", suite)
    r = shop.run("eval", "describe", "--filter", "case 1")
    assert r.code == ExitCode.OK, r.out + r.err
    (body,) = bodies
    assert body["system"] == [{"type": "text", "text": "You describe products for Acme."}] or body["system"] == (
        "You describe products for Acme."
    )
    blocks = body["messages"][0]["content"]
    images = [b for b in blocks if b["type"] == "image"]
    assert images[0]["source"] == {
        "type": "base64",
        "media_type": "image/png",
        "data": base64.b64encode(png(seed=1)).decode(),
    }
    assert images[1]["source"]["media_type"] == "image/png"
    # promptci's own Anthropic shape, for callers of the Python API, agrees
    prompt = promptci.load("describe", root=shop.path)
    mine = prompt.anthropic_kwargs(shop="Acme", question="What is it?", photo="img/photo.png")
    assert mine["messages"][0]["content"][1] == images[0]


def test_the_content_hash_covers_a_repository_images_bytes(shop: Repo) -> None:
    before = promptci.load("describe", root=shop.path).content_hash
    (shop.path / "img/logo.png").write_bytes(png(seed=5))
    assert promptci.load("describe", root=shop.path).content_hash != before
    (shop.path / "img/logo.png").write_bytes(png(seed=1))
    assert promptci.load("describe", root=shop.path).content_hash == before
    # at a commit, the image is read from that commit
    (shop.path / "img/logo.png").write_bytes(png(seed=5))
    shop.commit("a new logo")
    assert promptci.load("describe", "HEAD~1", root=shop.path).content_hash == before


def test_lint_checks_each_image(shop: Repo) -> None:
    assert shop.run("lint").code == ExitCode.OK
    (shop.path / "img/logo.png").write_bytes(b"<html><script>alert(1)</script></html>")
    r = shop.run("lint")
    assert r.code == ExitCode.FAILED
    assert "prompts/describe.yaml:9:" in r.out and "is not a PNG, JPEG, GIF or WebP image" in r.out
    (shop.path / "img/logo.png").unlink()
    assert "image 'img/logo.png' not found" in shop.run("lint").out
    shop.write("prompts/describe.yaml", DESCRIBE.replace("model: {provider: openai, model: gpt-4o-mini}\n", ""))
    (shop.path / "img/logo.png").write_bytes(png(seed=1))
    r = shop.run("lint")
    assert "takes no images; this prompt sends images" in r.out and "[images]" in r.out


def test_images_for_the_embedded_model_are_refused_on_each_case(shop: Repo) -> None:
    shop.write(
        "evals/describe.yaml",
        "prompts: [describe]\nmodel: {provider: transformers}\nscorers: [{type: contains}]\n"
        "cases:\n  - {vars: {shop: A, question: Q, photo: img/photo.png}, expected: mug}\n",
    )
    r = shop.run("eval", "describe")
    assert r.code != ExitCode.OK
    ((error,),) = shop.sql("SELECT error FROM results")
    assert "takes no images" in error
    # a conversation's turns run through the same check
    talk = (
        DESCRIBE.replace("name: describe", "name: talk").replace(
            "  - role: user\n", "  - history: history\n  - role: user\n", 1
        )
        + "  history: messages\n"
    )
    shop.write("prompts/talk.yaml", talk)
    shop.write(
        "evals/talk.yaml",
        "prompts: [talk]\nmodel: {provider: transformers}\nscorers: [{type: contains}]\nconversation: {}\n"
        "cases:\n  - {vars: {shop: A, question: Q, photo: img/photo.png}, turns: [hi], expected: mug}\n",
    )
    assert shop.run("eval", "talk").code != ExitCode.OK
    ((error,),) = shop.sql("SELECT error FROM results WHERE suite = 'talk'")
    assert "takes no images" in error


@pytest.mark.parametrize(
    ("photo", "message"),
    [
        ("img/big.png", "larger than"),
        ("img/page.png", "is not a PNG, JPEG, GIF or WebP image"),
        ("../outside.png", "a path inside the repository"),
        ("http://cdn.example.com/a.png", "only https:// URLs"),
        ("file:///etc/passwd", "only https:// URLs"),
        ("img/missing.png", "not found"),
    ],
)
def test_a_hostile_image_is_that_case_error_and_nothing_stored_is_lost(
    shop: Repo, server: tuple[str, list[dict[str, Any]]], photo: str, message: str
) -> None:
    url, bodies = server
    (shop.path / "img/big.png").write_bytes(png() + b"\0" * (50 * 1024 * 1024))  # a 50 MB image
    (shop.path / "img/page.png").write_bytes(b"<!doctype html><html><body>hi</body></html>")
    params = json.dumps({"base_url": url + "/v1", "max_retries": 0})
    shop.write("evals/describe.yaml", SUITE.format(provider="openai", model="m", params=params))
    assert shop.run("eval", "describe").code == ExitCode.OK
    kept = shop.sql("SELECT * FROM results ORDER BY case_id")
    (first_run,) = {row[0] for row in kept}
    text = SUITE.format(provider="openai", model="m", params=params).replace(
        "photo: img/photo.png", f"photo: '{photo}'"
    )
    shop.write("evals/describe.yaml", text)
    bodies.clear()
    r = shop.run("eval", "describe")
    assert r.code != ExitCode.OK
    (error,) = [e for (e,) in shop.sql("SELECT error FROM results WHERE error IS NOT NULL")]
    assert message in error and "\n" not in error, error
    assert bodies == []  # the other case was a cache hit; the broken one never went out
    assert shop.sql(f"SELECT * FROM results WHERE run_id = '{first_run}' ORDER BY case_id") == kept


def test_render_refuses_a_hostile_image_in_one_line(shop: Repo) -> None:
    (shop.path / "img/page.png").write_bytes(b"<html></html>")
    r = shop.run("render", "describe", "--var", "shop=A", "--var", "question=Q", "--var", "photo=img/page.png")
    assert r.code == ExitCode.USAGE
    assert r.err.strip().count("\n") == 0 and "img/page.png' is not a PNG" in r.err


def test_a_bundle_carries_repository_images_and_refuses_too_many(shop: Repo) -> None:
    out = shop.path / "bundle.json"
    assert shop.run("bundle", "-o", str(out)).code == ExitCode.OK
    (shop.path / "img/logo.png").write_bytes(png(seed=7))  # the working tree moves on; the bundle does not
    prompt = promptci.load("describe", label="latest", bundle=out)
    messages = prompt.render(shop="A", question="Q", photo="https://cdn.example.com/p.png")
    assert messages[1]["content"][1]["image_url"]["url"] == data_url(png(seed=1))
    assert messages[1]["content"][2]["image_url"]["url"] == "https://cdn.example.com/p.png"
    with pytest.raises(promptci.PromptciError, match=r"image 'img/photo\.png' not found"):
        prompt.render(shop="A", question="Q", photo="img/photo.png")  # a bundle holds what the prompt names
    big = png() + b"\0" * (17 * 2**20)
    (shop.path / "img/logo.png").write_bytes(big)
    shop.write("promptci.yaml", (shop.path / "promptci.yaml").read_text() + "images: {max_bytes: 20000000}\n")
    shop.commit("a large logo")
    r = shop.run("bundle", "-o", str(out))
    assert r.code == ExitCode.USAGE
    assert "image 'img/logo.png' of prompt 'describe' takes the images the bundle carries past 16 MiB" in r.err
