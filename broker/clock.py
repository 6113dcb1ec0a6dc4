"""Ids and timestamps in the contract's text forms (data-model.md §1)."""

from datetime import UTC, datetime
from uuid import uuid4


def now() -> str:
    """ISO-8601 UTC, exactly 6 fractional digits, ``+00:00``: always 32 characters."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def new_id() -> str:
    """A UUIDv4 as the 36-character lowercase hyphenated string."""
    return str(uuid4())


def normalise_timestamp(value: str) -> str | None:
    """Any ISO-8601 timestamp → the 32-character UTC form; None when it is not one.

    ``Z`` and other offsets are accepted; a value without offset is UTC.
    """
    text = value.strip()
    if not text or len(text) > 64:
        return None
    if text[-1] in "zZ":
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC).isoformat(timespec="microseconds")
    except (OverflowError, ValueError):
        return None
