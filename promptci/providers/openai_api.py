"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp, llm-katan).

The only module that imports openai. Retries are ours, not the SDK's, so that
every retry is counted: exponential backoff with full jitter on 429, 5xx,
timeouts and connection errors.
"""

from __future__ import annotations

import json
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..errors import InputError
from ..redact import clip, register_secret_variable, safe_host
from ..settings import ModelSettings
from .base import Completion, OnDone, Request, apply_stop
from .replies import BadReply, Deadline, Reply, chat_reply, encode, parse_json, read_body, retry_after

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}
# What the request body carries as the SDK's own arguments; any other parameter a model's
# `params` give goes into the body as it is, so that a server's own options pass through.
_SDK_ARGUMENTS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "temperature",
        "top_p",
        "seed",
        "stop",
        "tools",
        "tool_choice",
        "response_format",
    }
)
_P = TypeVar("_P", bound="OpenAIProvider")


def model_id(model: str, base_url: str | None) -> str:
    """``openai:MODEL@HOST``: the endpoint is part of a model's identity."""
    return f"openai:{model}@{safe_host(base_url or 'api.openai.com')}"


class OpenAIProvider:
    """Chat completions over HTTP, ``concurrency`` requests in flight."""

    name = "openai"
    example = "gpt-4o-mini"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        concurrency: int = 8,
        max_retries: int = 4,
        timeout: float = 60.0,
        backoff: float = 0.5,
        max_backoff: float = 20.0,
        price: dict[str, float] | None = None,
    ) -> None:
        self.model = model
        self.concurrency = max(1, concurrency)
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.price = price or {}
        self.timeout = timeout
        self._connect(base_url, api_key, timeout)

    def _connect(self, base_url: str | None, api_key: str | None, timeout: float) -> None:
        """The client for one request at a time, and the model id it answers as."""
        import openai

        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        api_key = api_key or os.environ.get("OPENAI_API_KEY")
        if not api_key:
            if not base_url:
                raise InputError(
                    "the openai provider needs OPENAI_API_KEY", hint="export it, or set model.params.api_key_env"
                )
            api_key = "unused"  # local servers accept any key
        self._openai = openai
        self.client = openai.OpenAI(api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout)
        self.model_id = model_id(self.model, base_url)

    @classmethod
    def from_settings(cls: type[_P], settings: ModelSettings, root: Path | None = None) -> _P:
        p = dict(settings.params)
        if not settings.model:
            example = f"e.g. --model {cls.name}:{cls.example}"
            raise InputError(f"the {cls.name} provider needs a model name", hint=example)
        key_env = p.get("api_key_env")
        if key_env:
            register_secret_variable(str(key_env))
        return cls(
            settings.model,
            base_url=p.get("base_url"),
            api_key=os.environ.get(str(key_env)) if key_env else None,
            concurrency=int(p.get("concurrency", 8)),
            max_retries=int(p.get("max_retries", 4)),
            timeout=float(p.get("timeout", 60)),
            backoff=float(p.get("backoff", 0.5)),
            max_backoff=float(p.get("max_backoff", 20)),
            price=p.get("price"),
        )

    def generate(self, requests: Sequence[Request], on_done: OnDone, should_stop: Callable[[], bool]) -> None:
        # Daemon workers: Ctrl-C or SIGTERM ends the command at once, without waiting for the
        # requests in flight (an executor's threads would be joined at exit, for up to `timeout`).
        tasks: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        done: queue.SimpleQueue[tuple[int, Completion | BaseException]] = queue.SimpleQueue()

        def work() -> None:
            while (i := tasks.get()) is not None:
                try:
                    done.put((i, self.complete(requests[i])))
                except BaseException as exc:  # handed to the calling thread, which raises it
                    done.put((i, exc))

        workers = [
            threading.Thread(target=work, name="promptci-openai", daemon=True)
            for _ in range(min(self.concurrency, len(requests)))
        ]
        for worker in workers:
            worker.start()
        sent = running = 0
        try:
            while True:
                while running < self.concurrency and sent < len(requests) and not should_stop():
                    tasks.put(sent)
                    sent, running = sent + 1, running + 1
                if not running:
                    return
                i, got = done.get()
                running -= 1
                if isinstance(got, BaseException):
                    raise got
                on_done(i, got)
        finally:
            for _ in workers:
                tasks.put(None)

    def body(self, request: Request) -> dict[str, Any]:
        """The chat-completions request body for ``request``, as sent (and as a batch line carries it)."""
        p = request.params
        body: dict[str, Any] = {
            "model": self.model,
            "messages": request.chat,
            "max_tokens": p.max_tokens,
            "temperature": p.temperature,
        }
        if p.top_p is not None:
            body["top_p"] = p.top_p
        if p.seed is not None or p.temperature > 0:
            body["seed"] = (p.seed or 0) * 1_000_003 + request.repeat
        if p.stop:
            body["stop"] = list(p.stop)
        body.update(dict(p.extra))
        if request.tools:
            body.update(json.loads(request.tools))
        return body

    def complete(self, request: Request) -> Completion:
        """One chat completion with retries; failures come back as ``Completion.error``."""
        openai = self._openai
        body = self.body(request)
        start = time.perf_counter()
        retries = 0
        while True:
            try:
                reply = chat_reply(self._create(body))
                break
            except BadReply as exc:  # that case's error; the run goes on
                return Completion(error=f"malformed reply: {exc}", latency_ms=_ms(start), meta={"retries": retries})
            except (openai.APITimeoutError, openai.APIConnectionError, openai.APIStatusError) as exc:
                status = getattr(exc, "status_code", None)
                retryable = status is None or status in RETRYABLE_STATUS
                if not retryable or retries >= self.max_retries:
                    return Completion(error=_describe(exc, retries), latency_ms=_ms(start), meta={"retries": retries})
                time.sleep(self._delay(retries, exc))
                retries += 1
            except openai.APIError as exc:  # any other failure the client reports is this case's too
                return Completion(error=_describe(exc, retries), latency_ms=_ms(start), meta={"retries": retries})
        return self.completion(reply, request, _ms(start), {"retries": retries})

    def completion(self, reply: Reply, request: Request, latency_ms: float | None, meta: dict[str, Any],
                   discount: float = 1.0) -> Completion:  # fmt: skip
        """What ``reply`` answers to ``request``; its cost times ``discount`` (a batch's rate)."""
        text = apply_stop(reply.text or "", request.params.stop).strip()
        if reply.calls or reply.refusal:  # stored whole, as one JSON text the tool scorers read
            text = encode(reply.text, reply.calls, reply.refusal)
        cost = self._cost(reply.tokens_in, reply.tokens_out)
        completion = Completion(
            text, None, latency_ms, reply.tokens_in, reply.tokens_out, None if cost is None else cost * discount, meta
        )
        if not completion.text:
            completion.error = "empty reply"
        return completion

    def _create(self, body: dict[str, Any]) -> Any:
        """One request, no retries: the reply's JSON, read within the timeout and
        :data:`~.replies.MAX_BODY_BYTES`; or an ``openai`` exception, or :class:`BadReply`."""
        openai = self._openai
        start = time.monotonic()
        known = {k: v for k, v in body.items() if k in _SDK_ARGUMENTS}
        extra = {k: v for k, v in body.items() if k not in _SDK_ARGUMENTS}  # sent as they are, in the body
        create = self.client.chat.completions.with_streaming_response.create
        with create(**known, extra_body=extra or None) as response:
            http = response.http_response
            deadline = Deadline(max(self.timeout - (time.monotonic() - start), 0.0), http.close)
            try:
                raw = read_body(response.iter_bytes())
            except BadReply:
                raise
            except Exception as exc:  # the transport's own errors, a closed response among them
                if deadline.passed:
                    raise openai.APITimeoutError(request=http.request) from None
                raise openai.APIConnectionError(message=f"the reply broke off: {exc}", request=http.request) from None
            finally:
                deadline.cancel()
        return parse_json(raw)

    def _delay(self, attempt: int, exc: Exception) -> float:
        response = getattr(exc, "response", None)
        after = retry_after(response.headers.get("retry-after") if response is not None else None, self.max_backoff)
        if after is not None:
            return after
        return random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))  # full jitter

    def _cost(self, tokens_in: int | None, tokens_out: int | None) -> float | None:
        if not self.price or tokens_in is None or tokens_out is None:
            return None
        per_million = 1_000_000
        return (tokens_in * self.price.get("input", 0) + tokens_out * self.price.get("output", 0)) / per_million


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def _describe(exc: Exception, retries: int) -> str:
    status = getattr(exc, "status_code", None)
    kind = f"HTTP {status}" if status else type(exc).__name__
    after = f" after {retries} retr{'y' if retries == 1 else 'ies'}" if retries else ""
    return f"{kind}{after}: {clip(str(exc), 200)}"
