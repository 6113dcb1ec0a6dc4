"""``python -m broker.delivery_main``: the background delivery worker (started by
``broker.delivery_worker.ensure_worker``). Django is set up before any model is imported."""

from __future__ import annotations

import signal
import sys


def main() -> int:
    from cafleet_project.cli import setup_django

    setup_django(("deliver",))
    from broker import tmux
    from broker.database import ensure_ready
    from broker.delivery_worker import delivery_run, log_line
    from broker.exceptions import CafleetError
    from broker.output import max_text_len

    def _stop(signum, _frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    try:
        ensure_ready()
        delivery_run(tmux=tmux, limit=max_text_len(), log=sys.stdout)
    except CafleetError as exc:
        log_line(sys.stdout, f"Error: {exc.message}")
        return 1
    except KeyboardInterrupt:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
