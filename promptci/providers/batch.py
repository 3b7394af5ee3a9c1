"""Batch mode: a model's calls sent through its provider's batch API, at the batch price.

``eval --batch`` (or ``batch: true`` on a model) writes one line per distinct request
(``custom_id`` is the request's cache key; the request exactly what a realtime call sends),
submits them as one batch (:mod:`.batch_apis`: OpenAI's Files and Batches, or Anthropic's
Message Batches) and records its id and the lines' SHA-256 in the results database. It then
waits, saying how far the batch has got. Ctrl-C leaves the batch running at the provider: ``eval
--resume`` runs the command again, and a batch already sent for the same requests is collected,
never sent twice. Answers become the same rows a realtime run stores, priced at the batch rate
(half, unless the model's ``batch_discount`` says otherwise). What the batch left unanswered (it
expired or was cancelled half done, or a line failed) is rerun as ``rerun`` says: ``realtime``,
in a new ``batch``, or ``none`` (each recorded as that case's error).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..settings import ModelSettings
from .base import Completion, OnDone, Request, cache_key
from .batch_apis import AnthropicBatches, OpenAIBatches
from .openai_api import OpenAIProvider

RERUN = ("realtime", "batch", "none")


def batchable(settings: ModelSettings) -> bool:
    """Whether ``settings``' model has a batch API promptci sends to: OpenAI's, or Anthropic's."""
    provider = settings.provider or "transformers"
    return provider == "openai" or (provider == "litellm" and str(settings.model).startswith("anthropic/"))


def batch_discount(settings: ModelSettings) -> float:
    """The share of the realtime price a batch pays (``params.batch_discount``; half by default)."""
    return float(settings.params.get("batch_discount", 0.5))


@dataclass
class BatchOptions:
    """How batches go: what becomes of unanswered requests, how often to look, and where to record."""

    rerun: str = "realtime"
    poll: float = 30.0
    journal: Any = None  # the run's results database (a Store), set by the run
    run_id: str = ""
    notify: Callable[[str], None] = field(default=lambda text: print(text, file=sys.stderr))


class BatchProvider:
    """The realtime provider for ``settings``, its calls sent as one batch per ``generate``."""

    def __init__(self, settings: ModelSettings, root: Path, options: BatchOptions) -> None:
        provider = settings.provider or "transformers"
        self.api: OpenAIProvider
        self.backend: OpenAIBatches | AnthropicBatches
        if provider == "openai":
            self.api = OpenAIProvider.from_settings(settings, root)
            self.backend = OpenAIBatches(self.api)
        elif provider == "litellm" and str(settings.model).startswith("anthropic/"):
            from .litellm_api import LiteLLMProvider

            self.api = LiteLLMProvider.from_settings(settings, root)
            self.backend = AnthropicBatches(self.api, settings)
        else:
            raise InputError(
                f"batch mode takes provider: openai, or litellm with an anthropic/ model; not {provider}"
                + (f" {settings.model}" if settings.model else ""),
                hint="OpenAI's Batch API (or a server with /v1/files and /v1/batches), or Anthropic's Message Batches",
            )
        self.model_id = self.api.model_id
        self.options = options
        self.discount = batch_discount(settings)

    def generate(self, requests: Sequence[Request], on_done: OnDone, should_stop: Callable[[], bool]) -> None:
        if not requests:
            return
        keys = [cache_key(self.model_id, r) for r in requests]
        first: dict[str, int] = {}
        for i, key in enumerate(keys):
            first.setdefault(key, i)
        answers = self._batch({k: requests[i] for k, i in first.items()})
        for i, key in enumerate(keys):
            on_done(i, answers[key])

    def _batch(self, wanted: dict[str, Request], *, again: bool = True) -> dict[str, Completion]:
        lines = [self.backend.line(k, r) for k, r in wanted.items()]
        payload = "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines).encode()
        digest = hashlib.sha256(payload).hexdigest()
        batch_id = self._sent_before(digest, set(wanted))
        if batch_id is None:
            batch_id = self._submit(lines, payload, digest)
        try:
            look = self._wait(batch_id)
        except KeyboardInterrupt:
            self.options.notify(
                f"batch {batch_id} is still running at the provider; `promptci eval --resume` collects it"
            )
            raise
        answers = self._read(batch_id, wanted)
        if self.options.journal is not None:
            self.options.journal.set_batch_status(batch_id, "collected")
        left = {k: r for k, r in wanted.items() if k not in answers or answers[k].error}
        if left:
            answers.update(self._rerun(left, batch_id, look.status, answers, again))
        return answers

    def _sent_before(self, digest: str, keys: set[str]) -> str | None:
        """A batch not yet collected that holds every one of these requests: this file's, or a
        larger one's (an earlier run of the command stored some of its answers before it stopped)."""
        journal = self.options.journal
        if journal is None:
            return None
        record = journal.open_batch(self.model_id, digest)
        if record is not None:
            self.options.notify(f"collecting batch {record.id}, sent earlier for these {record.requests} requests")
            return str(record.id)
        for record, _command in journal.pending_batches():
            if record.model_id != self.model_id or record.requests < len(keys) or not record.input_file:
                continue
            sent = self.backend.sent(record.input_file)
            if sent is not None and keys <= sent:
                self.options.notify(f"collecting batch {record.id}, sent earlier with these requests among its own")
                return str(record.id)
        return None

    def _submit(self, lines: list[dict[str, Any]], payload: bytes, digest: str) -> str:
        from ..store import BatchRecord

        batch_id, input_ref = self.backend.submit(lines, payload, digest, self.options.run_id)
        if self.options.journal is not None:
            record = BatchRecord(
                batch_id, self.options.run_id, self.model_id, digest, input_ref, len(lines), "submitted"
            )
            self.options.journal.add_batch(record)
        size = f"{len(payload):,} bytes"
        self.options.notify(f"sent batch {batch_id}: {len(lines)} request(s) in {size} (sha256 {digest[:12]})")
        return batch_id

    def _wait(self, batch_id: str) -> Any:
        said = None
        while True:
            look = self.backend.look(batch_id)
            line = f"batch {batch_id}: {look.status}" + (f", {look.done}/{look.total} done" if look.total else "")
            if line != said:
                self.options.notify(line)
                said = line
            if look.final:
                return look
            time.sleep(self.options.poll)

    def _read(self, batch_id: str, wanted: dict[str, Request]) -> dict[str, Completion]:
        """The answers in the batch's results, for the requests in ``wanted``."""
        found: dict[str, Completion] = {}
        meta = {"batch": batch_id}
        for number, line in enumerate(self.backend.results(batch_id), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                key = entry["custom_id"]
            except (ValueError, KeyError, TypeError):
                self.options.notify(f"batch {batch_id}: result line {number} is not a result; skipped")
                continue
            if isinstance(key, str) and key in wanted and key not in found:
                found[key] = self.backend.answer(entry, wanted[key], dict(meta), self.discount)
        return found

    def _rerun(
        self, left: dict[str, Request], batch_id: str, status: str, answers: dict[str, Completion], again: bool
    ) -> dict[str, Completion]:
        how = self.options.rerun if again or self.options.rerun != "batch" else "none"  # one new batch at most
        self.options.notify(f"batch {batch_id} ({status}) left {len(left)} request(s) unanswered: {how}")
        if how == "batch":
            return self._batch(left, again=False)
        if how == "none":
            return {k: answers.get(k) or Completion(error=f"batch {batch_id} {status}: not answered") for k in left}
        found: dict[str, Completion] = {}
        keys = list(left)
        self.api.generate([left[k] for k in keys], lambda i, c: found.__setitem__(keys[i], c), lambda: False)
        return found
