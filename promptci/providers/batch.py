"""Batch mode: a model's calls sent through the OpenAI Batch API (Files + Batches), at its batch price.

``eval --batch`` (or ``batch: true`` on a model) writes one JSONL line per distinct request
(``custom_id`` is the request's cache key, ``body`` exactly what a realtime call sends), uploads
it, creates the batch and records its id and the file's SHA-256 in the results database. It then
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
from typing import Any, Final

from ..errors import InputError
from ..redact import clip
from ..settings import ModelSettings
from .base import Completion, OnDone, Request, cache_key
from .openai_api import OpenAIProvider
from .replies import BadReply, chat_reply

ENDPOINT: Final = "/v1/chat/completions"
FINAL = frozenset({"completed", "failed", "expired", "cancelled"})
MAX_RESULT_BYTES = 1 << 30  # a result file larger than this is refused, not read
RERUN = ("realtime", "batch", "none")


@dataclass
class BatchOptions:
    """How batches go: what becomes of unanswered requests, how often to look, and where to record."""

    rerun: str = "realtime"
    poll: float = 30.0
    journal: Any = None  # the run's results database (a Store), set by the run
    run_id: str = ""
    notify: Callable[[str], None] = field(default=lambda text: print(text, file=sys.stderr))


class BatchProvider:
    """The ``openai`` provider for ``settings``, its calls sent as one batch per ``generate``."""

    def __init__(self, settings: ModelSettings, root: Path, options: BatchOptions) -> None:
        if (settings.provider or "transformers") != "openai":
            raise InputError(
                f"batch mode needs provider: openai, not {settings.provider or 'transformers'}",
                hint="the OpenAI Batch API, or a server that offers /v1/files and /v1/batches",
            )
        self.api = OpenAIProvider.from_settings(settings, root)
        self.client = self.api.client
        self.model_id = self.api.model_id
        self.options = options
        self.discount = float(settings.params.get("batch_discount", 0.5))

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
        lines = [
            json.dumps({"custom_id": k, "method": "POST", "url": ENDPOINT, "body": self.api.body(r)}, sort_keys=True)
            for k, r in wanted.items()
        ]
        payload = ("\n".join(lines) + "\n").encode()
        digest = hashlib.sha256(payload).hexdigest()
        batch_id = self._sent_before(digest, set(wanted))
        if batch_id is None:
            batch_id = self._submit(payload, digest, len(lines))
        try:
            batch = self._wait(batch_id)
        except KeyboardInterrupt:
            self.options.notify(
                f"batch {batch_id} is still running at the provider; `promptci eval --resume` collects it"
            )
            raise
        answers = self._read(batch, wanted)
        if self.options.journal is not None:
            self.options.journal.set_batch_status(batch_id, "collected")
        left = {k: r for k, r in wanted.items() if k not in answers or answers[k].error}
        if left:
            answers.update(self._rerun(left, batch, answers, again))
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
            if record.model_id != self.model_id or record.requests < len(keys):
                continue
            sent = {json.loads(line)["custom_id"] for line in self._file(record.input_file).splitlines() if line}
            if keys <= sent:
                self.options.notify(f"collecting batch {record.id}, sent earlier with these requests among its own")
                return str(record.id)
        return None

    def _submit(self, payload: bytes, digest: str, count: int) -> str:
        from ..store import BatchRecord

        upload = self.client.files.create(file=("promptci-batch.jsonl", payload), purpose="batch")
        batch = self.client.batches.create(
            input_file_id=upload.id,
            endpoint=ENDPOINT,
            completion_window="24h",
            metadata={"promptci_run": self.options.run_id, "sha256": digest[:64]},
        )
        if self.options.journal is not None:
            record = BatchRecord(batch.id, self.options.run_id, self.model_id, digest, upload.id, count, "submitted")
            self.options.journal.add_batch(record)
        size = f"{len(payload):,} bytes"
        self.options.notify(f"sent batch {batch.id}: {count} request(s) in {size} (sha256 {digest[:12]})")
        return str(batch.id)

    def _wait(self, batch_id: str) -> Any:
        said = None
        while True:
            batch = self.client.batches.retrieve(batch_id)
            counts = batch.request_counts
            line = f"batch {batch_id}: {batch.status}" + (
                f", {counts.completed + counts.failed}/{counts.total} done" if counts else ""
            )
            if line != said:
                self.options.notify(line)
                said = line
            if batch.status in FINAL:
                return batch
            time.sleep(self.options.poll)

    def _file(self, file_id: str) -> str:
        content = self.client.files.with_streaming_response.content(file_id)
        with content as response:
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_RESULT_BYTES:
                    raise InputError(f"batch file {file_id} is over {MAX_RESULT_BYTES >> 20} MiB; not read")
                chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", errors="replace")

    def _read(self, batch: Any, wanted: dict[str, Request]) -> dict[str, Completion]:
        """The answers in the batch's result and error files, for the requests in ``wanted``."""
        found: dict[str, Completion] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            for number, line in enumerate(self._file(file_id).splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                    key = entry["custom_id"]
                except (ValueError, KeyError, TypeError):
                    self.options.notify(f"batch {batch.id}: line {number} of {file_id} is not a result; skipped")
                    continue
                if key in wanted and key not in found:
                    found[key] = self._answer(entry, wanted[key], batch.id)
        return found

    def _answer(self, entry: dict[str, Any], request: Request, batch_id: str) -> Completion:
        meta = {"batch": batch_id}
        response = entry.get("response") or {}
        status = response.get("status_code") if isinstance(response, dict) else None
        if entry.get("error") or status != 200:
            error = entry.get("error") or (response.get("body") if isinstance(response, dict) else None)
            return Completion(error=f"batch line failed (HTTP {status}): {clip(json.dumps(error), 200)}", meta=meta)
        try:
            reply = chat_reply(response.get("body"))
        except BadReply as exc:
            return Completion(error=f"malformed reply: {exc}", meta=meta)
        return self.api.completion(reply, request, None, meta, self.discount)

    def _rerun(
        self, left: dict[str, Request], batch: Any, answers: dict[str, Completion], again: bool
    ) -> dict[str, Completion]:
        how = self.options.rerun if again or self.options.rerun != "batch" else "none"  # one new batch at most
        self.options.notify(f"batch {batch.id} ({batch.status}) left {len(left)} request(s) unanswered: {how}")
        if how == "batch":
            return self._batch(left, again=False)
        if how == "none":
            return {
                k: answers.get(k) or Completion(error=f"batch {batch.id} {batch.status}: not answered") for k in left
            }
        found: dict[str, Completion] = {}
        keys = list(left)
        self.api.generate([left[k] for k in keys], lambda i, c: found.__setitem__(keys[i], c), lambda: False)
        return found
