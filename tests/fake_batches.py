"""A local stand-in for OpenAI's chat completions, Files and Batches endpoints.

Both routes answer a request the same way (a digest of its messages), so a batch run and a
realtime run can be compared row by row. A batch finishes ``step`` more lines each time it is
looked at; ``expire_after`` lines in, it expires with what it had done; ``fail`` names lines that
fail with HTTP 500 in the error file. Every upload, batch and realtime body is kept for the test.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from .conftest import serving


def answer(body: dict[str, Any]) -> dict[str, Any]:
    """The reply to a chat body: the same on both routes."""
    text = json.dumps(body["messages"], sort_keys=True)
    word = ["positive", "negative", "neutral"][int(hashlib.sha256(text.encode()).hexdigest(), 16) % 3]
    return {
        "id": "cmpl",
        "object": "chat.completion",
        "created": 0,
        "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": word}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": len(text) // 4, "completion_tokens": 1, "total_tokens": len(text) // 4 + 1},
    }


@dataclass
class FakeBatches:
    step: int = 10_000  # lines finished each time a batch is looked at
    expire_after: int | None = None
    fail: set[str] = field(default_factory=set)  # custom_ids whose line fails
    files: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    realtime: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def upload(self, data: bytes, purpose: str) -> dict[str, Any]:
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = data
        return {"id": file_id, "object": "file", "bytes": len(data), "created_at": 0,
                "filename": "upload.jsonl", "purpose": purpose, "status": "processed"}  # fmt: skip

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        batch_id = f"batch_{len(self.batches) + 1}"
        lines = [json.loads(x) for x in self.files[body["input_file_id"]].decode().splitlines() if x]
        self.batches[batch_id] = {
            "id": batch_id, "object": "batch", "endpoint": body["endpoint"], "errors": None,
            "input_file_id": body["input_file_id"], "completion_window": body["completion_window"],
            "status": "validating", "output_file_id": None, "error_file_id": None, "created_at": 0,
            "metadata": body.get("metadata"), "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            "_lines": lines, "_done": 0, "_looked": 0,
        }  # fmt: skip
        return self.public(batch_id)

    def public(self, batch_id: str) -> dict[str, Any]:
        return {k: v for k, v in self.batches[batch_id].items() if not k.startswith("_")}

    def look(self, batch_id: str) -> dict[str, Any]:
        batch = self.batches[batch_id]
        if batch["status"] in ("completed", "expired"):
            return self.public(batch_id)
        batch["_looked"] += 1
        total = len(batch["_lines"])
        batch["_done"] = min(total, batch["_done"] + self.step)
        if self.expire_after is not None and batch["_done"] >= self.expire_after:
            batch["_done"] = min(self.expire_after, total)
            self.finish(batch, "expired")
        elif batch["_done"] == total:
            self.finish(batch, "completed")
        else:
            batch["status"] = "in_progress"
            batch["request_counts"]["completed"] = batch["_done"]
        return self.public(batch_id)

    def finish(self, batch: dict[str, Any], status: str) -> None:
        out, err = [], []
        for line in batch["_lines"][: batch["_done"]]:
            key = line["custom_id"]
            if key in self.fail:
                err.append({"id": "r", "custom_id": key, "error": None,
                            "response": {"status_code": 500, "body": {"error": {"message": "server error"}}}})  # fmt: skip
            else:
                out.append({"id": "r", "custom_id": key, "error": None,
                            "response": {"status_code": 200, "body": answer(line["body"])}})  # fmt: skip
        batch["status"] = status
        batch["request_counts"] = {"total": len(batch["_lines"]), "completed": len(out), "failed": len(err)}
        for name, rows in (("output_file_id", out), ("error_file_id", err)):
            if rows:
                data = "".join(json.dumps(r) + "\n" for r in rows).encode()
                batch[name] = self.upload(data, "batch_output")["id"]


class _JSONHandler(BaseHTTPRequestHandler):
    """Replies as JSON (or raw bytes), and logs nothing."""

    def _send(self, status: int, payload: Any = None, raw: bytes | None = None) -> None:
        data = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None: ...


@contextmanager
def fake_batches(state: FakeBatches) -> Iterator[str]:
    """``state`` served on 127.0.0.1; yields the base URL (with /v1)."""

    class Handler(_JSONHandler):
        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with state.lock:
                if self.path == "/v1/chat/completions":
                    body = json.loads(data)
                    state.realtime.append(body)
                    return self._send(200, answer(body))
                if self.path == "/v1/files":
                    head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
                    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + data)
                    parts = {p.get_param("name", header="content-disposition"): p for p in message.iter_parts()}
                    content = parts["file"].get_payload(decode=True)
                    purpose = parts["purpose"].get_payload(decode=True).decode()
                    return self._send(200, state.upload(content, purpose))
                if self.path == "/v1/batches":
                    return self._send(200, state.create(json.loads(data)))
            self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_GET(self) -> None:
            with state.lock:
                parts = self.path.strip("/").split("/")
                if parts[:2] == ["v1", "batches"] and len(parts) == 3 and parts[2] in state.batches:
                    return self._send(200, state.look(parts[2]))
                if parts[:2] == ["v1", "files"] and len(parts) == 4 and parts[3] == "content":
                    return self._send(200, None, state.files[parts[2]])
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    with serving(Handler) as url:
        yield f"{url}/v1"


def _last_text(messages: list[dict[str, Any]]) -> str:
    content = messages[-1]["content"]
    if isinstance(content, list):
        return "".join(str(block.get("text", "")) for block in content if isinstance(block, dict))
    return str(content)


def message(body: dict[str, Any]) -> dict[str, Any]:
    """Anthropic's reply to a Messages body: the same for the realtime route and a batch."""
    text = _last_text(body["messages"])
    word = ["positive", "negative", "neutral"][int(hashlib.sha256(text.encode()).hexdigest(), 16) % 3]
    return {
        "id": "msg",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [{"type": "text", "text": word}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": len(text) // 4 + 5, "output_tokens": 1},
    }


@dataclass
class FakeAnthropic:
    """Anthropic's Messages and Message Batches endpoints; a batch ends after ``looks`` looks,
    with the first ``expire_after`` requests answered and the rest expired."""

    looks: int = 2
    expire_after: int | None = None
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    realtime: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def look(self, batch_id: str, base: str) -> dict[str, Any]:
        batch = self.batches[batch_id]
        batch["_looked"] += 1
        total = len(batch["_requests"])
        ended = batch["_looked"] >= self.looks
        done = total if ended else 0
        answered = total if self.expire_after is None else min(total, self.expire_after)
        counts = {"processing": total - done, "succeeded": answered if ended else 0,
                  "errored": 0, "canceled": 0, "expired": (total - answered) if ended else 0}  # fmt: skip
        return {
            "id": batch_id, "type": "message_batch", "processing_status": "ended" if ended else "in_progress",
            "request_counts": counts, "results_url": f"{base}/v1/messages/batches/{batch_id}/results" if ended else None,
        }  # fmt: skip

    def results(self, batch_id: str) -> bytes:
        rows = []
        for k, request in enumerate(self.batches[batch_id]["_requests"]):
            if self.expire_after is None or k < self.expire_after:
                result = {"type": "succeeded", "message": message(request["params"])}
            else:
                result = {"type": "expired"}
            rows.append(json.dumps({"custom_id": request["custom_id"], "result": result}) + "\n")
        return "".join(rows).encode()


@contextmanager
def fake_anthropic(state: FakeAnthropic) -> Iterator[str]:
    """``state`` served on 127.0.0.1; yields the base URL (without /v1, as Anthropic's is)."""
    base: list[str] = []

    class Handler(_JSONHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            with state.lock:
                state.headers.append(dict(self.headers))
                if self.path == "/v1/messages":
                    state.realtime.append(body)
                    return self._send(200, message(body))
                if self.path == "/v1/messages/batches":
                    batch_id = f"msgbatch_{len(state.batches) + 1}"
                    state.batches[batch_id] = {"_requests": body["requests"], "_looked": -1}  # this is no look
                    return self._send(200, state.look(batch_id, base[0]))
            self._send(404, {"error": {"message": f"no route {self.path}"}})

        def do_GET(self) -> None:
            parts = self.path.strip("/").split("/")
            with state.lock:
                state.headers.append(dict(self.headers))
                if parts[:3] == ["v1", "messages", "batches"] and len(parts) >= 4 and parts[3] in state.batches:
                    if len(parts) == 5 and parts[4] == "results":
                        return self._send(200, raw=state.results(parts[3]))
                    return self._send(200, state.look(parts[3], base[0]))
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    with serving(Handler) as url:
        base.append(url)
        yield url
