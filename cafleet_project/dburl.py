"""CAFLEET_DATABASE_URL parsing (cli.md §2.2, §4.1.1). Standard library only."""

from __future__ import annotations

import os

DEFAULT_RELATIVE = os.path.join(".local", "share", "cafleet", "registry.db")


class DatabaseURLError(Exception):
    pass


def database_url(environ=os.environ) -> str:
    url = environ.get("CAFLEET_DATABASE_URL")
    if url is None:
        return "sqlite:///" + os.path.join(os.path.expanduser("~"), DEFAULT_RELATIVE)
    return url


def database_path(environ=os.environ) -> str:
    """The SQLite file named by the URL. Raises DatabaseURLError with the contract text."""
    url = database_url(environ)
    scheme, sep, rest = url.partition("://")
    if not sep or not (scheme == "sqlite" or scheme.startswith("sqlite+")):
        raise DatabaseURLError(f"unsupported database URL '{url}'; expected sqlite:///<path>.")
    if not rest.startswith("/"):
        raise DatabaseURLError("database URL has no file path")
    path = rest[1:]
    path = path.split("?", 1)[0]
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
