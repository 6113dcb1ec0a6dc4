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
    """``CAFLEET_DATABASE_URL`` is unusable; ``str(exc)`` is the contract text (never with a
    password: every message quotes the URL through :func:`redact_url`)."""


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


def _sqlite_path(url: str) -> str:
    """The SQLite file named by a ``sqlite:`` URL. Raises DatabaseURLError."""
    rest = url.partition("://")[2]
    if not rest.startswith("/"):
        raise DatabaseURLError("database URL has no file path")
    path = rest[1:].split("?", 1)[0]
    if not path or path == ":memory:" or path.startswith("file::memory:"):
        raise DatabaseURLError("database URL has no file path")
    return path


def backend(environ=os.environ) -> str:
    """``"sqlite"`` or ``"postgresql"``, from the URL's scheme. Raises DatabaseURLError."""
    url = database_url(environ)
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if sep and (scheme == "sqlite" or scheme.startswith("sqlite+")):
        return "sqlite"
    if sep and scheme.split("+", 1)[0] in POSTGRES_SCHEMES:
        return "postgresql"
    # The contract's text (cli.md §4.1); PostgreSQL URLs are described in docs/deployment.md.
    raise DatabaseURLError(
        f"unsupported database URL '{redact_url(url)}'; expected sqlite:///<path>."
    )


def database_path(environ=os.environ) -> str:
    """The SQLite file named by the URL. Raises DatabaseURLError with the contract text."""
    url = database_url(environ)
    if backend(environ) != "sqlite":
        raise DatabaseURLError(f"'{redact_url(url)}' is not a SQLite database URL.")
    return _sqlite_path(url)


def safe_database_path(environ=os.environ) -> str:
    """For settings modules: the path, or a harmless placeholder when the URL is bad.

    The entry point validates the URL (and reports the error) before any database access.
    """
    try:
        return database_path(environ)
    except DatabaseURLError:
        return os.devnull + ".cafleet-invalid-url"


# ------------------------------------------------------------------------------ postgresql
POSTGRES_SCHEMES = ("postgresql", "postgres")
# Connection parameters that have their own Django setting; every other query parameter is
# a libpq option (sslmode, sslrootcert, connect_timeout, application_name, ...) passed on.
_PG_OWN_KEYS = {"host", "hostaddr", "port", "dbname", "user", "password"}
_PG_KEY = re.compile(r"[a-z_]+")


def _pg_error(url: str, what: str) -> DatabaseURLError:
    return DatabaseURLError(f"invalid PostgreSQL URL '{redact_url(url)}': {what}.")


def postgres_params(environ=os.environ) -> dict:
    """The parts of a ``postgresql://`` URL: host, port, dbname, user, password, options.

    Components are percent-decoded, so a unix-socket directory can be written as the host
    (``postgresql://%2Frun%2Fpostgresql/db``) or as a ``host=/run/postgresql`` query
    parameter. Empty parts stay empty: libpq then uses its defaults (``PGHOST``, the
    default socket directory, ``PGPASSWORD``, ``~/.pgpass``, ...).
    """
    from urllib.parse import parse_qsl, unquote

    url = database_url(environ)
    rest = url.partition("://")[2]
    rest = rest.partition("#")[0]
    rest, _, query = rest.partition("?")
    netloc, slash, dbpath = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    if not at:
        userinfo, hostport = "", netloc
    user, colon, password = userinfo.partition(":")
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise _pg_error(url, "unclosed '[' in the host")
        host, port = hostport[1:end], hostport[end + 1 :].removeprefix(":")
        if hostport[end + 1 :] and not hostport[end + 1 :].startswith(":"):
            raise _pg_error(url, "text after the IPv6 address")
    elif "," in hostport:
        hosts, ports = [], []  # several hosts (libpq failover): host1:p1,host2:p2
        for part in hostport.split(","):
            h, _, p = part.partition(":")
            hosts.append(h)
            ports.append(p)
        host, port = ",".join(hosts), ",".join(ports) if any(ports) else ""
    else:
        host, _, port = hostport.partition(":")
    for p in port.split(","):
        if p and not (p.isdigit() and 1 <= int(p) <= 65535):
            raise _pg_error(url, f"bad port '{p}'")
    params = {
        "host": unquote(host),
        "port": port,
        "dbname": unquote(dbpath) if slash else "",
        "user": unquote(user),
        "password": unquote(password) if colon else "",
        "options": {},
    }
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise _pg_error(url, "malformed query string") from None
    for key, value in pairs:
        if not _PG_KEY.fullmatch(key):
            raise _pg_error(url, f"bad parameter name '{key}'")
        if key in _PG_OWN_KEYS:
            if key == "port" and value and not value.isdigit():
                raise _pg_error(url, f"bad port '{value}'")
            params[key] = value
        else:
            params["options"][key] = value
    if "hostaddr" in params:
        params["options"]["hostaddr"] = params.pop("hostaddr")
    if not params["dbname"]:
        raise _pg_error(url, "no database name (postgresql://[user@]host[:port]/dbname)")
    return params


def redact_url(url: str) -> str:
    """``url`` with any password (in the user info or a ``password=`` parameter) as ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    head, qmark, query = rest.partition("?")
    netloc, slash, path = head.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    if at and ":" in userinfo:
        netloc = userinfo.split(":", 1)[0] + ":***@" + hostport
    if qmark:
        query = re.sub(r"(?i)(^|&)(password)=[^&]*", r"\1\2=***", query)
    return f"{scheme}{sep}{netloc}{slash}{path}{qmark}{query}"


def database_label(environ=os.environ) -> str:
    """How errors and messages name the database: the SQLite path, or the PostgreSQL URL
    without its password."""
    try:
        if backend(environ) == "sqlite":
            return database_path(environ)
    except DatabaseURLError:
        pass
    return redact_url(database_url(environ))


def key_anchor(environ=os.environ) -> str:
    """A path whose directory holds the admin's secret key (``cafleet_project.secretkey``
    takes the database path): the SQLite file itself, or a name in the default data
    directory when the database is on a server."""
    try:
        if backend(environ) == "sqlite":
            return os.path.abspath(database_path(environ))
    except DatabaseURLError:
        return safe_database_path(environ)
    return os.path.join(os.path.expanduser("~"), os.path.dirname(DEFAULT_RELATIVE_DB), "server")


# ------------------------------------------------------------------------------ limits
def _positive(name: str, default, environ, parse, expected: str):
    """The variable ``name`` read with ``parse``: ``default`` when unset, an error naming
    ``expected`` unless it is a positive, finite number."""
    raw = environ.get(name)
    if raw is None:
        return default
    try:
        value = parse(raw.strip())
    except ValueError:
        value = 0
    if not 0 < value < float("inf"):
        raise _error(f"invalid value for {name}: '{raw}' (expected {expected}).")
    return value


def positive_int(name: str, default: int, environ=os.environ) -> int:
    """A positive integer (base 10)."""
    return _positive(name, default, environ, lambda text: int(text, 10), "a positive integer")


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
    return _positive(name, default, environ, float, "a positive number")


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


DEFAULT_HOOK_GRACE = 30.0


def hook_grace(environ=os.environ) -> float:
    """Seconds a delivery waits for the recipient's hooks (waiter, PostToolUse) before the
    gated keystroke preview is tried instead (docs/hooks.md)."""
    return positive_seconds("CAFLEET_HOOK_GRACE", DEFAULT_HOOK_GRACE, environ)


def hook_identity(environ=os.environ) -> tuple[str | None, str | None]:
    """``(CAFLEET_AGENT_ID, CAFLEET_SESSION_ID)``: the member ``member create`` started, as
    its own hooks see it (unset or empty: ``None``)."""
    return environ.get("CAFLEET_AGENT_ID") or None, environ.get("CAFLEET_SESSION_ID") or None


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


# ------------------------------------------------------------------------------ hosts
_HOST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def host_id_if_set(environ=os.environ) -> str | None:
    """``CAFLEET_HOST_ID`` when it is set (validated as :func:`host_id` does), else None."""
    return host_id(environ) if environ.get("CAFLEET_HOST_ID") else None


def host_id(environ=os.environ) -> str:
    """``CAFLEET_HOST_ID``: the name of this host in placements (which host owns a pane)
    and in the delivery worker's lease. Default: the host name (its first label when the
    name is not a valid id by itself)."""
    raw = environ.get("CAFLEET_HOST_ID")
    if raw is None or raw == "":
        import socket

        name = socket.gethostname()
        if _HOST_ID.fullmatch(name):
            return name
        first = name.split(".", 1)[0]
        return first if _HOST_ID.fullmatch(first) else "localhost"
    if not _HOST_ID.fullmatch(raw):
        raise _error(
            f"invalid value for CAFLEET_HOST_ID: '{raw}' (expected 1-63 letters, digits, "
            "'.', '_' or '-', starting with a letter or digit)."
        )
    return raw


# ------------------------------------------------------------------------------ debugging
def debug(environ=os.environ) -> bool:
    """``CAFLEET_DEBUG=1``: unexpected errors also print a traceback (§2.4)."""
    return environ.get("CAFLEET_DEBUG") == "1"
