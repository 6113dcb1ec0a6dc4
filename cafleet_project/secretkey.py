"""The admin's secret key file, ``secret_key`` beside the database (mode 0600).

Loading the settings never writes anything: :func:`load` reads a stored key that is safe to
use, and otherwise hands out a key for this process only. The file is created by
:func:`ensure`, which the commands that need a stable key (``db init``, ``cafleet server``)
call only once their own checks have passed, so a command that refuses a database never
leaves a file beside it.

A stored key is used only when it is a regular file owned by the current user that neither
group nor others can read; anything else is refused by :func:`check` with a clear error.
Standard library only.
"""

from __future__ import annotations

import os
import secrets
import stat
import time

FILE_NAME = "secret_key"


class SecretKeyError(Exception):
    """A key file that must not be used; ``str(exc)`` is the message for the user."""


def key_path(database_path: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(database_path)), FILE_NAME)


def check(path: str) -> bool:
    """True when a usable key file exists, False when there is none.

    Raises :class:`SecretKeyError` for a key file that is not a regular file, is owned by
    another user, or is readable or writable by group or others.
    """
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as exc:
        raise SecretKeyError(f"cannot read the secret key file {path}: {exc.strerror}.") from None
    if not stat.S_ISREG(st.st_mode):
        raise SecretKeyError(f"refusing the secret key file {path}: it is not a regular file.")
    if st.st_uid != os.geteuid():
        raise SecretKeyError(
            f"refusing the secret key file {path}: it is owned by uid {st.st_uid}, not by "
            f"the current user (uid {os.geteuid()}). Remove it and run 'cafleet db init'."
        )
    if st.st_mode & 0o077:
        raise SecretKeyError(
            f"refusing the secret key file {path}: its mode {stat.S_IMODE(st.st_mode):04o} "
            f"lets group or others read it. Remove it (or 'chmod 600 {path}' if it was "
            "never exposed) and run 'cafleet db init'."
        )
    return True


def _read(path: str) -> str:
    with open(path, encoding="ascii") as fh:
        return fh.read().strip()


def load(database_path: str) -> str:
    """For the settings module: the stored key when it is safe to use, else an ephemeral
    key for this process. Never writes and never raises."""
    path = key_path(database_path)
    try:
        if check(path):
            key = _read(path)
            if key:
                return key
    except (SecretKeyError, OSError, ValueError):
        pass
    return secrets.token_urlsafe(50)


def ensure(database_path: str) -> str:
    """The installation's key, created (mode 0600, never replacing a file) when missing.

    Call it only after the command's own checks have passed. Also makes the running
    process use that key. ``CAFLEET_SECRET_KEY`` in the environment wins and writes nothing.
    Raises :class:`SecretKeyError`.
    """
    from django.conf import settings

    from broker import conf

    env_key = conf.secret_key()
    if env_key:
        return env_key
    path = key_path(database_path)
    if not check(path):
        key = secrets.token_urlsafe(50)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            pass  # made by a concurrent command meanwhile: use that one
        except OSError as exc:
            raise SecretKeyError(
                f"cannot create the secret key file {path}: {exc.strerror}."
            ) from None
        else:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(key + "\n")
        check(path)
    key = ""
    for _ in range(40):  # a concurrent creator may not have written its key yet
        try:
            key = _read(path)
        except (OSError, ValueError) as exc:
            raise SecretKeyError(f"cannot read the secret key file {path}: {exc}.") from None
        if key:
            break
        time.sleep(0.05)
    if not key:
        raise SecretKeyError(f"the secret key file {path} is empty; remove it and retry.")
    settings.SECRET_KEY = key
    return key
