"""One-time login links for the admin (cli.md §4.7): single use, valid 15 minutes.

Design: the tokens live in memory, in the process that serves the admin. ``cafleet server``
issues a token and prints the link from that same process, so no other process ever needs
to know it, and nothing about it is written to the database or to disk:

* a token is 32 random bytes (``secrets.token_urlsafe``); the table keeps only its SHA-256
  digest, mapped to the user's primary key and an expiry on the monotonic clock;
* redeeming pops the entry under a lock, so of two racing requests exactly one logs in;
* a restart forgets every outstanding link (each start prints a fresh one).

A signed token would also need a server-side "used" marker to be single use, i.e. a write
to the database (and a table for it); the in-memory table gives the same guarantees without
either.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time

VALID_SECONDS = 15 * 60

_lock = threading.Lock()
_tokens: dict[str, tuple[int, float]] = {}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _purge(now: float) -> None:
    for key in [k for k, (_, expires) in _tokens.items() if expires <= now]:
        del _tokens[key]


def issue(user_pk: int, *, valid_seconds: float = VALID_SECONDS, clock=time.monotonic) -> str:
    """A fresh token that logs ``user_pk`` in once, within ``valid_seconds``."""
    token = secrets.token_urlsafe(32)
    now = clock()
    with _lock:
        _purge(now)
        _tokens[_digest(token)] = (user_pk, now + valid_seconds)
    return token


def redeem(token: str, *, clock=time.monotonic) -> int | None:
    """The user's primary key if ``token`` is outstanding; the token is spent either way."""
    if not token or len(token) > 200:
        return None
    now = clock()
    with _lock:
        entry = _tokens.pop(_digest(token), None)
        _purge(now)
    if entry is None:
        return None
    user_pk, expires = entry
    return user_pk if now < expires else None


def login_path(token: str) -> str:
    """The URL path of the login view for ``token`` (see ``cafleet_project/urls.py``)."""
    from django.urls import reverse

    return reverse("cafleet-login-link", kwargs={"token": token})
