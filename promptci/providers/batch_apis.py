"""The providers' batch endpoints behind one shape: a line per request, submit, look, results.

- :class:`OpenAIBatches`: the OpenAI Batch API (a JSONL file uploaded through Files, then a
  batch over it; results and errors as files), for ``provider: openai`` and any server with
  ``/v1/files`` and ``/v1/batches``.
- :class:`AnthropicBatches`: Anthropic's Message Batches (the requests posted as one JSON body;
  results as JSONL at ``results_url``), for ``provider: litellm`` with an ``anthropic/`` model.

Each turns a result line into the :class:`~.base.Completion` a realtime call would have given,
through the realtime provider's own reading of a reply.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any, Final, NamedTuple

from ..anthropic_shape import anthropic_request
from ..errors import InputError
from ..redact import clip
from ..settings import ModelSettings
from .base import Completion, Request
from .openai_api import OpenAIProvider
from .replies import BadReply, Call, Reply, chat_reply, parse_json, read_body, token_count

ENDPOINT: Final = "/v1/chat/completions"
MAX_RESULT_BYTES = 1 << 30  # a result file larger than this is refused, not read
ANTHROPIC_VERSION = "2023-06-01"


class Look(NamedTuple):
    status: str  # the provider's word for it
    final: bool
    done: int
    total: int


class OpenAIBatches:
    """The OpenAI Batch API, through the openai client of the realtime provider."""

    def __init__(self, api: OpenAIProvider) -> None:
        self.api, self.client = api, api.client

    def line(self, key: str, request: Request) -> dict[str, Any]:
        return {"custom_id": key, "method": "POST", "url": ENDPOINT, "body": self.api.body(request)}

    def submit(self, lines: list[dict[str, Any]], payload: bytes, digest: str, run_id: str) -> tuple[str, str]:
        """(batch id, what it was sent as: the uploaded file's id)."""
        upload = self.client.files.create(file=("promptci-batch.jsonl", payload), purpose="batch")
        batch = self.client.batches.create(
            input_file_id=upload.id,
            endpoint=ENDPOINT,
            completion_window="24h",
            metadata={"promptci_run": run_id, "sha256": digest},
        )
        return str(batch.id), str(upload.id)

    def look(self, batch_id: str) -> Look:
        batch = self.client.batches.retrieve(batch_id)
        counts = batch.request_counts
        done, total = (counts.completed + counts.failed, counts.total) if counts else (0, 0)
        return Look(batch.status, batch.status in ("completed", "failed", "expired", "cancelled"), done, total)

    def results(self, batch_id: str) -> Iterator[str]:
        batch = self.client.batches.retrieve(batch_id)
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                yield from self._file(file_id).splitlines()

    def sent(self, input_ref: str) -> set[str] | None:
        """The custom ids of an earlier batch's requests, from its uploaded file."""
        return {json.loads(line)["custom_id"] for line in self._file(input_ref).splitlines() if line.strip()}

    def _file(self, file_id: str) -> str:
        with self.client.files.with_streaming_response.content(file_id) as response:
            return _bounded(response.iter_bytes(), f"batch file {file_id}")

    def answer(self, entry: dict[str, Any], request: Request, meta: dict[str, Any], discount: float) -> Completion:
        response = entry.get("response") or {}
        status = response.get("status_code") if isinstance(response, dict) else None
        if entry.get("error") or status != 200:
            error = entry.get("error") or (response.get("body") if isinstance(response, dict) else None)
            return Completion(error=f"batch line failed (HTTP {status}): {clip(json.dumps(error), 200)}", meta=meta)
        try:
            reply = chat_reply(response.get("body"))
        except BadReply as exc:
            return Completion(error=f"malformed reply: {exc}", meta=meta)
        return self.api.completion(reply, request, None, meta, discount)


class AnthropicBatches:
    """Anthropic's Message Batches, over HTTP with the realtime provider's key and endpoint."""

    def __init__(self, api: OpenAIProvider, settings: ModelSettings) -> None:
        import httpx

        model = str(settings.model)
        if not model.startswith("anthropic/"):
            raise InputError(f"batch mode through litellm takes anthropic/ models, not {model!r}")
        self.api, self.model = api, model.split("/", 1)[1]
        key_env = settings.params.get("api_key_env")
        key = os.environ.get(str(key_env)) if key_env else os.environ.get("ANTHROPIC_API_KEY")
        if not key:
            raise InputError("Anthropic's batches need ANTHROPIC_API_KEY", hint="export it, or set params.api_key_env")
        self.base = str(settings.params.get("base_url") or "https://api.anthropic.com").rstrip("/")
        headers = {"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION, "content-type": "application/json"}
        self.http = httpx.Client(headers=headers, timeout=float(settings.params.get("timeout", 60)))

    def line(self, key: str, request: Request) -> dict[str, Any]:
        p = request.params
        shape = json.loads(request.tools) if request.tools else {}
        params: dict[str, Any] = {"model": self.model, "max_tokens": p.max_tokens, "temperature": p.temperature}
        params.update(anthropic_request(request.chat, shape.get("tools") or [], shape.get("tool_choice"),
                                        shape.get("response_format")))  # fmt: skip
        if p.top_p is not None:
            params["top_p"] = p.top_p
        if p.stop:
            params["stop_sequences"] = list(p.stop)
        return {"custom_id": key, "params": params}

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """Anthropic's JSON object answering ``path``, read within :data:`MAX_BODY_BYTES`."""
        with self.http.stream(method, f"{self.base}{path}", **kwargs) as response:
            try:
                body = read_body(response.iter_bytes())
                found = parse_json(body) if response.status_code < 400 else None
            except BadReply as exc:
                raise InputError(f"Anthropic's answer to {path}: {exc}") from None
        if response.status_code >= 400:
            text = body.decode("utf-8", errors="replace")
            raise InputError(f"Anthropic's batches answered HTTP {response.status_code}: {clip(text, 200)}")
        if not isinstance(found, dict):
            raise InputError(f"Anthropic's batches answered {path} with a JSON {type(found).__name__}")
        return found

    def submit(self, lines: list[dict[str, Any]], payload: bytes, digest: str, run_id: str) -> tuple[str, str]:
        batch = self._json("POST", "/v1/messages/batches", json={"requests": lines})
        return str(batch["id"]), ""

    def look(self, batch_id: str) -> Look:
        batch = self._json("GET", f"/v1/messages/batches/{batch_id}")
        counts = batch.get("request_counts") or {}
        done = sum(int(counts.get(k) or 0) for k in ("succeeded", "errored", "canceled", "expired"))
        status = str(batch.get("processing_status"))
        return Look(status, status == "ended", done, done + int(counts.get("processing") or 0))

    def results(self, batch_id: str) -> Iterator[str]:
        url = self._json("GET", f"/v1/messages/batches/{batch_id}").get("results_url")
        if not url:
            return
        with self.http.stream("GET", str(url)) as response:
            yield from _bounded(response.iter_bytes(), f"batch {batch_id}'s results").splitlines()

    def sent(self, input_ref: str) -> set[str] | None:
        return None  # Anthropic keeps no request file to read back: only the same file is matched

    def answer(self, entry: dict[str, Any], request: Request, meta: dict[str, Any], discount: float) -> Completion:
        result = entry.get("result") or {}
        kind = result.get("type") if isinstance(result, dict) else None
        if kind != "succeeded":
            error = result.get("error") if isinstance(result, dict) else None
            return Completion(error=f"batch request {kind}: {clip(json.dumps(error), 200)}", meta=meta)
        try:
            reply = _message_reply(result.get("message"), request)
        except BadReply as exc:
            return Completion(error=f"malformed reply: {exc}", meta=meta)
        return self.api.completion(reply, request, None, meta, discount)


def _message_reply(message: Any, request: Request) -> Reply:
    """An Anthropic message as a chat reply: its text, its ``tool_use`` blocks as calls; a JSON
    schema asked for as a forced tool comes back as the reply's text, as LiteLLM gives it."""
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        raise BadReply("the result's message has no content list")
    shape = json.loads(request.tools) if request.tools else {}
    fmt = shape.get("response_format") or {}
    schema_tool = (fmt.get("json_schema") or {}).get("name") if fmt.get("type") == "json_schema" else None
    texts, calls = [], []
    for block in message["content"]:
        if not isinstance(block, dict):
            raise BadReply("a content block is not an object")
        if block.get("type") == "text":
            texts.append(str(block.get("text") or ""))
        elif block.get("type") == "tool_use":
            arguments = json.dumps(block.get("input") or {})
            if block.get("name") == schema_tool:
                texts.append(arguments)
            else:
                calls.append(Call(str(block.get("name")), arguments))
    usage = message.get("usage") or {}
    text = "".join(texts) or None
    return Reply(text, token_count(usage, "input_tokens"), token_count(usage, "output_tokens"), tuple(calls))


def _bounded(chunks: Iterator[bytes], what: str) -> str:
    """The text of ``chunks``, refused (nothing past :data:`MAX_RESULT_BYTES` read) as one line naming ``what``."""
    try:
        return read_body(chunks, MAX_RESULT_BYTES).decode("utf-8", errors="replace")
    except BadReply:
        raise InputError(f"{what} is over {MAX_RESULT_BYTES >> 20} MiB; not read") from None
