"""The delivery worker's lease and how a command starts a worker (docs/delivery-states.md).

One worker per database and host, enforced by a lease row in ``delivery_workers`` (key =
host name + database path) that the worker refreshes with a heartbeat. A command that leaves
a delivery held (``broker.delivery``) calls :func:`ensure_worker`: when no live worker holds
the lease it starts one in the background (``python -m cafleet_project.cli deliver``,
detached, output appended to a 0600 log file beside the database). The worker's loop is
``broker.delivery_worker``.
"""

from __future__ import annotations

import os
import subprocess
import sys

from django.db import IntegrityError, transaction

from broker import conf
from broker.clock import now
from broker.hook_store import age
from broker.models import DeliveryWorker

STALE_AFTER = 15.0
LOG_NAME = "delivery-worker.log"


def autostart_enabled(environ=os.environ) -> bool:
    return conf.delivery_autostart(environ)


# ------------------------------------------------------------------------------ lease
def database_file() -> str:
    """The SQLite file, or the password-free PostgreSQL URL (``broker.database``)."""
    from broker.database import database_identity

    return database_identity()


def lease_key() -> str:
    """One worker per host (``CAFLEET_HOST_ID``) and database."""
    return f"{conf.host_id()}:{database_file()}"


def pid_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def is_live(row: DeliveryWorker | None, *, stale_after: float = STALE_AFTER) -> bool:
    """A lease counts while its heartbeat is fresh and its process exists (same host)."""
    return row is not None and age(row.heartbeat_at) < stale_after and pid_alive(row.pid)


def lease_holder(key: str | None = None) -> DeliveryWorker | None:
    row = DeliveryWorker.objects.filter(key=key or lease_key()).first()
    return row if is_live(row) else None


def acquire(key: str, pid: int, *, stale_after: float = STALE_AFTER) -> bool:
    """Take the lease when it is free, ours, or stale. Exactly one racer wins: the write
    transaction starts with BEGIN IMMEDIATE and the takeover is a conditional UPDATE on
    the holder seen."""
    stamp = now()
    with transaction.atomic():
        row = DeliveryWorker.objects.filter(key=key).first()
        if row is None:
            try:
                with transaction.atomic():  # a database without IMMEDIATE writes may race here
                    DeliveryWorker.objects.create(
                        key=key, pid=str(pid), started_at=stamp, heartbeat_at=stamp
                    )
            except IntegrityError:
                return False
            return True
        if row.pid != str(pid) and is_live(row, stale_after=stale_after):
            return False
        changed = DeliveryWorker.objects.filter(
            key=key, pid=row.pid, heartbeat_at=row.heartbeat_at
        ).update(pid=str(pid), started_at=stamp, heartbeat_at=stamp)
        return changed == 1


def heartbeat(key: str, pid: int) -> bool:
    """Refresh our lease; False when another worker has taken it over."""
    return DeliveryWorker.objects.filter(key=key, pid=str(pid)).update(heartbeat_at=now()) == 1


def release(key: str, pid: int) -> None:
    DeliveryWorker.objects.filter(key=key, pid=str(pid)).delete()


# ------------------------------------------------------------------------------ spawning
def log_path() -> str:
    from broker.database import local_state_dir

    return os.path.join(local_state_dir(), LOG_NAME)


def spawn_worker(*, environ=os.environ) -> int:
    """Start a detached worker process; its pid. Raises OSError when it cannot start.

    Its own session (no controlling terminal, not killed with the command's process group),
    stdin from /dev/null, stdout and stderr appended to the 0600 log beside the database.
    """
    path = log_path()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.fchmod(fd, 0o600)
        proc = subprocess.Popen(  # fixed argv, no shell
            [sys.executable, "-m", "cafleet_project.cli", "deliver"],
            stdin=subprocess.DEVNULL,
            stdout=fd,
            stderr=fd,
            close_fds=True,
            start_new_session=True,
            env=dict(environ),
        )
    finally:
        os.close(fd)
    return proc.pid


def ensure_worker(*, environ=os.environ) -> bool:
    """Start a background worker unless one holds the lease. True when one was started.

    Two commands may both start one; the second loses the lease race and exits at once.
    Never raises: a worker that cannot start leaves the delivery held (the next command
    that holds one tries again).
    """
    if not autostart_enabled(environ):
        return False
    try:
        if lease_holder() is not None:
            return False
        spawn_worker(environ=environ)
    except Exception:
        return False
    return True
