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

import threading
import time
from collections import deque
from http.server import ThreadingHTTPServer

from tests.realagent.mock_scripts import (
    ANTHROPIC,
    BACKENDS,
    OPENAI,
    Action,
    Recorded,
    user_messages,
)
from tests.realagent.mock_sse import _Handler

# Re-exported: callers import these names from this module.
__all__ = ["ANTHROPIC", "BACKENDS", "OPENAI", "Action", "MockModel", "Recorded", "user_messages"]


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
