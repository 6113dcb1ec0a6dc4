"""A scripted mock model server for the real Claude Code and Codex clients (stdlib only).

It listens on ``127.0.0.1`` (port 0: the OS picks one) and speaks just enough of two APIs:

* Anthropic Messages (``POST /v1/messages``, with or without ``?beta=true``), streaming
  server-sent events when ``"stream": true`` (plain JSON otherwise);
* OpenAI Responses (``POST /v1/responses``), streaming server-sent events; ``GET
  /v1/models`` and any other path get a harmless empty answer so the client never stalls.

A test scripts the model with a queue of actions per backend (``"anthropic"`` /
``"openai"``):

* :meth:`MockModel.reply` -- answer with a text;
* :meth:`MockModel.bash` -- ask for one shell tool call (Claude: a ``tool_use`` of ``Bash``
  with ``{"command", "description"}``; Codex: a ``function_call`` of its shell tool);
* :meth:`MockModel.busy` -- keep the stream open for N seconds, then answer.

A "turn request" (one that offers the shell tool -- Claude's ``Bash``, Codex's
``exec_command``: the agent's real conversation) takes the next action from the queue; when
the queue is empty it answers ``ok``. Side requests (Codex's title request, which offers only
``apply_patch``) are answered ``ok`` and never consume the queue.

Every request body is recorded (:attr:`MockModel.requests`), so a test can count the user
turns that carry a given text (:meth:`MockModel.user_turns_containing`).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

ANTHROPIC = "anthropic"
OPENAI = "openai"
BACKENDS = (ANTHROPIC, OPENAI)


@dataclass
class Action:
    """One scripted model answer.

    ``kind`` is ``"text"`` (answer ``text``), ``"bash"`` (one shell tool call running
    ``command``), or ``"busy"`` (hold the stream ``seconds`` long, then answer ``text``).
    """

    kind: str
    text: str = "ok"
    command: str = ""
    description: str = "Run a command"
    seconds: float = 0.0


@dataclass
class Recorded:
    """One request the server received."""

    backend: str
    method: str
    path: str
    body: object
    turn: bool  # True when it took an action from the queue (a real conversation turn)
    time: float = field(default_factory=time.time)


# Text parts the clients add to user messages on their own (context, reminders); not typed.
_CLIENT_TAGS = ("system-reminder", "environment_context", "user_instructions", "permissions")


def _client_added(text: str) -> bool:
    stripped = text.strip()
    return any(
        stripped.startswith(f"<{tag}>") and stripped.endswith(f"</{tag}>") for tag in _CLIENT_TAGS
    )


def _iter_texts(content) -> list[str]:
    """Typed text pieces of one message ``content`` (string or list of parts), without
    the parts the client adds itself (``<system-reminder>…``, ``<environment_context>…``)."""
    if isinstance(content, str):
        return [] if _client_added(content) else [content]
    out: list[str] = []
    if isinstance(content, list):
        for part in content:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, dict):
                kind = part.get("type")
                text = part.get("text")
                if (
                    kind in ("text", "input_text", "output_text")
                    and isinstance(text, str)
                    and not _client_added(text)
                ):
                    out.append(text)
    return out


def user_messages(backend: str, body) -> list[str]:
    """The texts of the user-role messages in one request body, in order.

    Claude: ``messages[].role == "user"`` text parts (tool results are not texts);
    Codex: ``input[]`` items of ``type == "message"`` and ``role == "user"``.
    """
    if not isinstance(body, dict):
        return []
    items = body.get("messages") if backend == ANTHROPIC else body.get("input")
    out: list[str] = []
    for item in items or []:
        if not isinstance(item, dict) or item.get("role") != "user":
            continue
        if backend == OPENAI and item.get("type", "message") != "message":
            continue
        texts = _iter_texts(item.get("content"))
        if texts:
            out.append("\n".join(texts))
    return out


class MockModel:
    """The server; use :meth:`start` / :meth:`stop` (or ``with``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, deque[Action]] = {b: deque() for b in BACKENDS}
        self._requests: list[Recorded] = []
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._active = 0  # streams in progress (turn requests)

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> MockModel:
        handler = type("_Handler", (_Handler,), {"model": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="mockmodel", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> MockModel:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (Claude's ANTHROPIC_BASE_URL; Codex adds ``/v1``)."""
        return f"http://127.0.0.1:{self.port}"

    # -- script ---------------------------------------------------------------------------
    def push(self, backend: str, action: Action) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}")
        with self._lock:
            self._queues[backend].append(action)

    def reply(self, backend: str, text: str) -> None:
        self.push(backend, Action("text", text=text))

    def bash(self, backend: str, command: str, description: str = "Run a command") -> None:
        self.push(backend, Action("bash", command=command, description=description))

    def busy(self, backend: str, seconds: float, text: str = "ok") -> None:
        self.push(backend, Action("busy", text=text, seconds=seconds))

    def pending(self, backend: str) -> int:
        with self._lock:
            return len(self._queues[backend])

    def clear(self, backend: str | None = None) -> None:
        with self._lock:
            for b in [backend] if backend else BACKENDS:
                self._queues[b].clear()

    def _next(self, backend: str) -> Action:
        with self._lock:
            queue = self._queues[backend]
            return queue.popleft() if queue else Action("text", text="ok")

    # -- records --------------------------------------------------------------------------
    def _record(self, rec: Recorded) -> None:
        with self._lock:
            self._requests.append(rec)

    def requests(self, backend: str | None = None, *, turns_only: bool = True) -> list[Recorded]:
        with self._lock:
            recs = list(self._requests)
        return [
            r
            for r in recs
            if (backend is None or r.backend == backend) and (r.turn or not turns_only)
        ]

    def turn_count(self, backend: str) -> int:
        return len(self.requests(backend))

    def last_user_message(self, backend: str) -> str | None:
        recs = self.requests(backend)
        if not recs:
            return None
        msgs = user_messages(backend, recs[-1].body)
        return msgs[-1] if msgs else None

    def user_turns_containing(self, backend: str, needle: str) -> list[str]:
        """The distinct user messages (across all recorded turn requests) containing
        ``needle``.

        Each request repeats the conversation so far, so a user message is counted once
        by its position in the conversation: the union over requests of
        ``(index, text)`` pairs. One submitted message gives a list of length 1.
        """
        seen: dict[int, str] = {}
        for rec in self.requests(backend):
            for index, text in enumerate(user_messages(backend, rec.body)):
                if needle in text:
                    seen.setdefault(index, text)
        return [seen[i] for i in sorted(seen)]

    def wait_turns(self, backend: str, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.turn_count(backend) < count:
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{backend}: {self.turn_count(backend)} turn requests, wanted {count}, "
                    f"within {timeout}s"
                )
            time.sleep(0.05)

    def wait_user_text(self, backend: str, needle: str, timeout: float = 30.0) -> list[str]:
        """Poll until a user message containing ``needle`` reached the model."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.user_turns_containing(backend, needle)
            if found:
                return found
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"{backend}: no user message containing {needle!r} within {timeout}s"
                )
            time.sleep(0.05)

    # -- helpers for handlers -------------------------------------------------------------
    def wait_stop(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when the server is stopping."""
        return self._stopping.wait(seconds)


class _Handler(BaseHTTPRequestHandler):
    model: MockModel
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet
        pass

    # -- plumbing -------------------------------------------------------------------------
    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.headers.get("Content-Encoding", "").lower() == "gzip" and raw:
            import gzip

            raw = gzip.decompress(raw)
        elif self.headers.get("Content-Encoding", "").lower() == "zstd" and raw:
            pass  # not decodable with the stdlib; recorded as undecodable below
        try:
            return json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            return {"_raw": raw[:2000].decode("latin-1")}

    def _json(self, status: int, obj) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _sse_start(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    def _event(self, name: str, data: dict) -> None:
        payload = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
        self.wfile.write(payload)
        self.wfile.flush()

    def _hold(self, seconds: float, keepalive) -> None:
        """Keep the stream open ``seconds`` long, sending ``keepalive()`` now and then."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if self.model.wait_stop(min(left, 1.0)):
                return
            keepalive()

    # -- routes ---------------------------------------------------------------------------
    def do_GET(self):
        path = urlsplit(self.path).path
        self.model._record(Recorded("other", "GET", self.path, None, False))
        if path.endswith("/models"):
            self._json(200, {"object": "list", "data": [], "models": []})
        else:
            self._json(200, {})

    def do_POST(self):
        path = urlsplit(self.path).path
        body = self._body()
        try:
            if path.endswith("/v1/messages"):
                self._anthropic(body)
            elif path.endswith("/responses"):
                self._openai(body)
            else:
                self.model._record(Recorded("other", "POST", self.path, body, False))
                self._json(200, {})
        except (BrokenPipeError, ConnectionResetError):
            pass

    # -- Anthropic Messages -----------------------------------------------------------------
    def _anthropic(self, body) -> None:
        body = body if isinstance(body, dict) else {}
        turn = "Bash" in _tool_names(body)
        self.model._record(Recorded(ANTHROPIC, "POST", self.path, body, turn))
        action = self.model._next(ANTHROPIC) if turn else Action("text", text="ok")
        model_name = body.get("model") or "claude-mock"
        msg_id = "msg_" + uuid.uuid4().hex[:24]
        if action.kind == "bash":
            block = {
                "type": "tool_use",
                "id": "toolu_" + uuid.uuid4().hex[:24],
                "name": "Bash",
                "input": {},
            }
            args = json.dumps({"command": action.command, "description": action.description})
            deltas = [{"type": "input_json_delta", "partial_json": args}]
            stop_reason = "tool_use"
            full = [{**block, "input": json.loads(args)}]
        else:
            block = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": action.text}]
            stop_reason = "end_turn"
            full = [{"type": "text", "text": action.text}]
        usage = {"input_tokens": 10, "output_tokens": 5}
        if not body.get("stream"):
            self._json(
                200,
                {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model_name,
                    "content": full,
                    "stop_reason": stop_reason,
                    "stop_sequence": None,
                    "usage": usage,
                },
            )
            return
        self._sse_start()
        self._event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": msg_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model_name,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 10, "output_tokens": 1},
                },
            },
        )
        self._event("ping", {"type": "ping"})
        if action.kind == "busy":
            self._hold(action.seconds, lambda: self._event("ping", {"type": "ping"}))
        self._event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        )
        for delta in deltas:
            self._event(
                "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
            )
        self._event("content_block_stop", {"type": "content_block_stop", "index": 0})
        self._event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": 5},
            },
        )
        self._event("message_stop", {"type": "message_stop"})

    # -- OpenAI Responses -------------------------------------------------------------------
    def _openai(self, body) -> None:
        body = body if isinstance(body, dict) else {}
        turn = bool({"exec_command", "shell", "shell_command"} & set(_tool_names(body)))
        self.model._record(Recorded(OPENAI, "POST", self.path, body, turn))
        action = self.model._next(OPENAI) if turn else Action("text", text="ok")
        resp_id = "resp_" + uuid.uuid4().hex[:24]
        model_name = body.get("model") or "gpt-mock"
        self._sse_start()
        base = {"id": resp_id, "object": "response", "model": model_name, "output": []}
        self._event(
            "response.created",
            {
                "type": "response.created",
                "sequence_number": 0,
                "response": {**base, "status": "in_progress"},
            },
        )
        seq = 1
        if action.kind == "busy":
            self._hold(
                action.seconds, lambda: self.wfile.write(b": keepalive\n\n") or self.wfile.flush()
            )
        if action.kind == "bash":
            call_id = "call_" + uuid.uuid4().hex[:24]
            name, args = _codex_shell_call(body, action.command)
            item = {
                "type": "function_call",
                "id": "fc_" + uuid.uuid4().hex[:24],
                "call_id": call_id,
                "name": name,
                "arguments": json.dumps(args),
                "status": "completed",
            }
            self._event(
                "response.output_item.added",
                {
                    "type": "response.output_item.added",
                    "sequence_number": seq,
                    "output_index": 0,
                    "item": {**item, "arguments": "", "status": "in_progress"},
                },
            )
            seq += 1
            self._event(
                "response.output_item.done",
                {
                    "type": "response.output_item.done",
                    "sequence_number": seq,
                    "output_index": 0,
                    "item": item,
                },
            )
            seq += 1
            output = [item]
        else:
            item_id = "msg_" + uuid.uuid4().hex[:24]
            text = action.text
            part = {"type": "output_text", "text": "", "annotations": []}
            self._event(
                "response.output_item.added",
                {
                    "type": "response.output_item.added",
                    "sequence_number": seq,
                    "output_index": 0,
                    "item": {
                        "type": "message",
                        "id": item_id,
                        "role": "assistant",
                        "status": "in_progress",
                        "content": [],
                    },
                },
            )
            self._event(
                "response.content_part.added",
                {
                    "type": "response.content_part.added",
                    "sequence_number": seq + 1,
                    "item_id": item_id,
                    "output_index": 0,
                    "content_index": 0,
                    "part": part,
                },
            )
            self._event(
                "response.output_text.delta",
                {
                    "type": "response.output_text.delta",
                    "sequence_number": seq + 2,
                    "item_id": item_id,
                    "output_index": 0,
                    "content_index": 0,
                    "delta": text,
                },
            )
            self._event(
                "response.output_text.done",
                {
                    "type": "response.output_text.done",
                    "sequence_number": seq + 3,
                    "item_id": item_id,
                    "output_index": 0,
                    "content_index": 0,
                    "text": text,
                },
            )
            done_item = {
                "type": "message",
                "id": item_id,
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
            self._event(
                "response.output_item.done",
                {
                    "type": "response.output_item.done",
                    "sequence_number": seq + 4,
                    "output_index": 0,
                    "item": done_item,
                },
            )
            seq += 5
            output = [done_item]
        self._event(
            "response.completed",
            {
                "type": "response.completed",
                "sequence_number": seq,
                "response": {
                    **base,
                    "status": "completed",
                    "output": output,
                    "usage": {
                        "input_tokens": 10,
                        "input_tokens_details": {"cached_tokens": 0},
                        "output_tokens": 5,
                        "output_tokens_details": {"reasoning_tokens": 0},
                        "total_tokens": 15,
                    },
                },
            },
        )


def _tool_names(body: dict) -> list[str]:
    names = []
    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            names.append(tool.get("name") or (tool.get("function") or {}).get("name") or "")
    return names


def _codex_shell_call(body: dict, command: str) -> tuple[str, dict]:
    """The name and arguments of a shell call in a form the requesting Codex offers.

    Codex versions name their shell tool differently (``shell`` with an argv list,
    ``shell_command`` with a string, ``exec_command`` with ``cmd``); pick by the tools the
    request lists.
    """
    names = _tool_names(body)
    why = "Run a command for the test"
    if "exec_command" in names:
        # require_escalated: under --ask-for-approval on-request this asks the user.
        return "exec_command", {
            "cmd": command,
            "sandbox_permissions": "require_escalated",
            "justification": why,
        }
    if "shell_command" in names:
        return "shell_command", {
            "command": command,
            "with_escalated_permissions": True,
            "justification": why,
        }
    return "shell", {
        "command": ["bash", "-lc", command],
        "with_escalated_permissions": True,
        "justification": why,
    }
