"""A stand-in for ``broker.tmux`` with the delivery interface (DELIVERY-INTERFACE.md).

It types nothing: each pane's gate is set by the test (``None`` passes, a reason holds),
and every call is recorded so a test can prove which panes were offered what.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from broker import tmux as real_tmux


@dataclass(frozen=True)
class FakeDelivery:
    status: str
    reason: str | None
    verified: bool


class FakeTmux:
    """``gate[pane]``: None (passes) or a reason; ``gone`` panes fail with pane_gone."""

    def __init__(self, *, verified: bool = True, delay: float = 0.0):
        self.gate: dict[str, str | None] = {}
        self.gone: set[str] = set()
        self.verified = verified
        self.delay = delay
        self.typed: list[tuple[str, str]] = []
        self.offers: list[str] = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    # the parts of broker.tmux the delivery code uses
    def tmux_binary(self):
        return "/usr/bin/tmux"

    def preview_payload(self, *args):
        return real_tmux.preview_payload(*args)

    def pane_gate(self, pane_id: str, coding_agent: str) -> FakeDelivery:
        if pane_id in self.gone:
            return FakeDelivery("failed", "pane_gone", False)
        reason = self.gate.get(pane_id)
        if reason:
            return FakeDelivery("held", reason, False)
        return FakeDelivery("delivered", None, False)

    def deliver_preview(self, pane_id: str, payload: str, *, coding_agent: str = "claude"):
        with self._lock:
            self.offers.append(pane_id)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if self.delay:
                time.sleep(self.delay)
            gate = self.pane_gate(pane_id, coding_agent)
            if gate.status != "delivered":
                return gate
            with self._lock:
                self.typed.append((pane_id, payload))
            return FakeDelivery("delivered", None, self.verified)
        finally:
            with self._lock:
                self.active -= 1

    def typed_into(self, pane_id: str) -> list[str]:
        return [payload for pane, payload in self.typed if pane == pane_id]
