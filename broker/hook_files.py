"""The files ``cafleet hook`` keeps beside the database: the ``hooks`` directory (per-member
settings, waiter locks), the 0600 ``hook.log``, and the ``flock`` helpers for the locks.

Standard library only: this runs on every hook call (``broker.hook``).
"""

from __future__ import annotations

import os
import time

HOOKS_DIR = "hooks"
LOG_NAME = "hook.log"


def database_path(environ=os.environ) -> str:
    from broker.conf import database_path as _path

    return _path(environ)


def hooks_dir(db_path: str) -> str:
    """``<database dir>/hooks``: per-member settings files and waiter locks (0700)."""
    return os.path.join(os.path.dirname(os.path.abspath(db_path)), HOOKS_DIR)


def ensure_hooks_dir(db_path: str) -> str:
    path = hooks_dir(db_path)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    return path


def log_path(db_path: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(db_path)), LOG_NAME)


def utc_now() -> str:
    """The contract's 32-character ISO-8601 UTC form (``broker.clock.now`` without uuid)."""
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="microseconds")


def log(db_path: str | None, line: str) -> None:
    """Append one line to the 0600 hook log beside the database; never raises."""
    try:
        if db_path is None:
            db_path = database_path()
        fd = os.open(log_path(db_path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.fchmod(fd, 0o600)
            text = " ".join(str(line).split())[:2000]
            os.write(fd, f"{utc_now()} pid {os.getpid()} {text}\n".encode("utf-8", "replace"))
        finally:
            os.close(fd)
    except Exception:
        pass


# ------------------------------------------------------------------------------ locks
def waiter_lock_path(db_path: str, agent_id: str) -> str:
    return os.path.join(hooks_dir(db_path), f"wait-{agent_id}.lock")


def held_by_another(path: str) -> bool:
    """True while another process holds an exclusive ``flock`` on ``path`` (probed with a
    shared, non-blocking lock, dropped at once). A missing file is not held."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


def waiter_alive(db_path: str, agent_id: str) -> bool:
    """True while a waiter holds the agent's lock."""
    return held_by_another(waiter_lock_path(db_path, agent_id))


def flock_within(fd: int, wait: float, step: float = 0.05) -> bool:
    """Take an exclusive ``flock`` on ``fd``, trying every ``step`` seconds for up to
    ``wait`` seconds. True once held (closing ``fd`` releases it), False at the deadline."""
    import fcntl

    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(step)


def take_lock(path: str, wait: float) -> int | None:
    """The open, exclusively locked descriptor of ``path`` (created 0600, never through a
    symlink), or None when another process keeps it locked for ``wait`` seconds."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, 0o600)
    if flock_within(fd, wait):
        return fd
    os.close(fd)
    return None
