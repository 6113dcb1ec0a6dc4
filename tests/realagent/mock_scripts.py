"""What the mock model is scripted with and what it records (see :mod:`tests.realagent.mockmodel`).

:class:`Action` is one scripted answer, :class:`Recorded` one request received, and
:func:`user_messages` reads the typed user texts out of a request body of either API.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

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
