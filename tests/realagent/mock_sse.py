"""The HTTP side of the mock model: routes, server-sent event streams of both APIs.

:class:`_Handler` answers Anthropic Messages (``/v1/messages``) and OpenAI Responses
(``/v1/responses``) requests for one :class:`~tests.realagent.mockmodel.MockModel`, which
sets ``model`` on a subclass per server; turn requests take the next scripted
:class:`~tests.realagent.mock_scripts.Action`.
"""

from __future__ import annotations

import json
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from tests.realagent.mock_scripts import ANTHROPIC, OPENAI, Action, Recorded

if TYPE_CHECKING:
    from tests.realagent.mockmodel import MockModel


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
