"""``cafleet deliver [--background]``: the delivery worker (docs/delivery-states.md).

In the foreground it runs until nothing has been held for ``CAFLEET_DELIVERY_IDLE_EXIT``
seconds, printing one line per event; Ctrl-C or SIGTERM stop it cleanly (exit 0, lease
released). ``--background`` starts it detached and returns at once.
"""

from __future__ import annotations

import signal
import sys

from broker import conf


def check_settings(call) -> tuple[float, float, int]:
    """The worker's settings, validated before the database is touched."""
    return conf.delivery_hold_timeout(), conf.delivery_idle_exit(), conf.max_text_len()


class _Log:
    """Worker events as text lines, or one JSON object per line in JSON mode."""

    def __init__(self, out):
        self.out = out

    def write(self, line: str) -> None:
        line = line.rstrip("\n")
        if not line:
            return
        if self.out.json_mode:
            ts, _, message = line.partition(" ")
            self.out.stdout.write(self.out.dumps({"ts": ts, "message": message}) + "\n")
        else:
            self.out.stdout.write(line + "\n")

    def flush(self) -> None:
        self.out.stdout.flush()


def deliver(call, out) -> None:
    from broker import delivery_worker as worker

    hold, idle, limit = call.checked
    if call.options["background"]:
        holder = worker.lease_holder()
        if holder is not None:
            result = {"started": False, "pid": int(holder.pid), "log": worker.log_path()}
            text = f"A delivery worker is already running (pid {holder.pid})."
        else:
            pid = worker.spawn_worker()
            result = {"started": True, "pid": pid, "log": worker.log_path()}
            text = f"Delivery worker started in the background (pid {pid}); log: {result['log']}"
        if out.json_mode:
            out.json(result)
        else:
            out.text(text)
        return

    def _stop(signum, _frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _stop)
    log = _Log(out)
    try:
        worker.delivery_run(tmux=call.tmux, limit=limit, hold=hold, idle=idle, log=log)
    except KeyboardInterrupt:
        worker.log_line(log, "stopped")
    finally:
        signal.signal(signal.SIGTERM, previous)
        sys.stdout.flush()
