"""Every ``CAFLEET_*`` environment setting, read, parsed and validated here (cli.md §2.2).

Nothing else reads these variables from ``os.environ``. Each reader takes the environment
as an argument (``os.environ`` by default) and reads it at call time, so a test or a
spawned pane can pass its own. Invalid values raise :class:`broker.exceptions.CafleetError`
(exit 1) with the contract's text. Standard library only: the settings modules import it.
"""

from __future__ import annotations

import os
import re

DEFAULT_RELATIVE_DB = os.path.join(".local", "share", "cafleet", "registry.db")
DEFAULT_MAX_TEXT_LEN = 200
DEFAULT_MAX_BODY_BYTES = 1048576
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


class DatabaseURLError(Exception):
    """``CAFLEET_DATABASE_URL`` names no SQLite file; ``str(exc)`` is the contract text."""


def _error(message: str):
    from broker.exceptions import CafleetError

    return CafleetError(message)


# ------------------------------------------------------------------------------ database
def raw_database_url(environ=os.environ) -> str | None:
    """The caller's own value (``None`` when unset), passed on to spawned panes."""
    return environ.get("CAFLEET_DATABASE_URL")


def database_url(environ=os.environ) -> str:
    url = raw_database_url(environ)
    if url is None:
        return "sqlite:///" + os.path.join(os.path.expanduser("~"), DEFAULT_RELATIVE_DB)
    return url


def database_path(environ=os.environ) -> str:
    """The SQLite file named by the URL. Raises DatabaseURLError with the contract text."""
    url = database_url(environ)
    scheme, sep, rest = url.partition("://")
    if not sep or not (scheme == "sqlite" or scheme.startswith("sqlite+")):
        raise DatabaseURLError(f"unsupported database URL '{url}'; expected sqlite:///<path>.")
    if not rest.startswith("/"):
        raise DatabaseURLError("database URL has no file path")
    path = rest[1:].split("?", 1)[0]
    if not path or path == ":memory:" or path.startswith("file::memory:"):
        raise DatabaseURLError("database URL has no file path")
    return path


def safe_database_path(environ=os.environ) -> str:
    """For settings modules: the path, or a harmless placeholder when the URL is bad.

    The entry point validates the URL (and reports the error) before any database access.
    """
    try:
        return database_path(environ)
    except DatabaseURLError:
        return os.devnull + ".cafleet-invalid-url"


# ------------------------------------------------------------------------------ limits
def positive_int(name: str, default: int, environ=os.environ) -> int:
    raw = environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip(), 10)
    except ValueError:
        value = 0
    if value < 1:
        raise _error(f"invalid value for {name}: '{raw}' (expected a positive integer).")
    return value


def max_text_len(environ=os.environ) -> int:
    """Codepoints of a body shown in output and previews (§3.5)."""
    return positive_int("CAFLEET_MAX_TEXT_LEN", DEFAULT_MAX_TEXT_LEN, environ)


def max_body_bytes(environ=os.environ) -> int:
    """Largest accepted message body in UTF-8 bytes (§4.4.1)."""
    return positive_int("CAFLEET_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES, environ)


# ------------------------------------------------------------------------------ delivery
DEFAULT_DELIVERY_HOLD_TIMEOUT = 300.0
DEFAULT_DELIVERY_IDLE_EXIT = 180.0


def positive_seconds(name: str, default: float, environ=os.environ) -> float:
    """A positive, finite number of seconds (decimals allowed)."""
    raw = environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise _error(f"invalid value for {name}: '{raw}' (expected a positive number).")
    return value


def delivery_hold_timeout(environ=os.environ) -> float:
    """Seconds a preview may stay held before its one escalation to the Director."""
    return positive_seconds("CAFLEET_DELIVERY_HOLD_TIMEOUT", DEFAULT_DELIVERY_HOLD_TIMEOUT, environ)


def delivery_idle_exit(environ=os.environ) -> float:
    """Seconds the delivery worker stays with nothing held before it exits."""
    return positive_seconds("CAFLEET_DELIVERY_IDLE_EXIT", DEFAULT_DELIVERY_IDLE_EXIT, environ)


def delivery_autostart(environ=os.environ) -> bool:
    """``CAFLEET_DELIVERY_AUTOSTART=0``: commands never start a background delivery worker
    (a service manager runs ``cafleet deliver`` instead)."""
    return environ.get("CAFLEET_DELIVERY_AUTOSTART", "1").strip() != "0"


# ------------------------------------------------------------------------------ server
def broker_host(environ=os.environ) -> str:
    return environ.get("CAFLEET_BROKER_HOST") or DEFAULT_HOST


def broker_port(environ=os.environ) -> int:
    raw = environ.get("CAFLEET_BROKER_PORT")
    if raw is None:
        return DEFAULT_PORT
    text = raw.strip()
    port = int(text) if re.fullmatch(r"[0-9]{1,5}", text) else 0
    if not 1 <= port <= 65535:
        raise _error(
            f"invalid value for CAFLEET_BROKER_PORT: '{raw}' (expected a port number 1-65535)."
        )
    return port


def secret_key(environ=os.environ) -> str | None:
    """``CAFLEET_SECRET_KEY`` when set and non-empty (the web view's signing key)."""
    return environ.get("CAFLEET_SECRET_KEY") or None


# ------------------------------------------------------------------------------ debugging
def debug(environ=os.environ) -> bool:
    """``CAFLEET_DEBUG=1``: unexpected errors also print a traceback (§2.4)."""
    return environ.get("CAFLEET_DEBUG") == "1"
