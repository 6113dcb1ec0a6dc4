"""Helpers shared by the in-process command tests (tests/test_cli_*.py)."""


def sid_args(fleet):
    """The ``--session-id`` option naming the fleet's session."""
    return ("--session-id", fleet.sid)


def send(cli, fleet, *extra, sender=None, to=None, text="hello"):
    """``message send`` from ``sender`` (the Director by default) to ``to``."""
    args = [*sid_args(fleet), "message", "send", "--agent-id", sender or fleet.director, "--to", to]
    if text is not None:
        args += ["--text", text]
    return cli(*args, *extra)
