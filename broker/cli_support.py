"""Helpers shared by the command validators: control characters and message bodies."""

from __future__ import annotations

import errno
import os
import re
import stat
import sys

from broker.conf import max_body_bytes
from broker.exceptions import ValidationError

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SEPARATOR = re.compile("[\u2028\u2029]")
_CHUNK = 65536


def reject_controls(flag: str, value: str | None) -> None:
    """Names, descriptions and labels may not hold C0/C1 controls or DEL (cli.md §3.1), nor
    a line or paragraph separator (U+2028, U+2029): they would break a line as well."""
    if value is None:
        return
    if _CONTROL.search(value):
        raise ValidationError(f"{flag} may not contain control characters.")
    if _SEPARATOR.search(value):
        raise ValidationError(f"{flag} may not contain line or paragraph separators.")


def _read_limited(stream, limit: int) -> tuple[bytes, int | None]:
    """Read at most limit+1 bytes: reading stops once the limit is exceeded (cli.md §4.4.1).

    Returns the bytes and the input's full size when it is known (a regular file's size);
    None for an over-long stream, whose full size is never read.
    """
    kept = bytearray()
    while len(kept) <= limit:
        chunk = stream.read(min(_CHUNK, limit + 1 - len(kept)))
        if not chunk:
            return bytes(kept), len(kept)
        kept += chunk
    try:
        st = os.fstat(stream.fileno())
        size = st.st_size if stat.S_ISREG(st.st_mode) else None
    except (AttributeError, OSError, ValueError):
        size = None
    return bytes(kept), size


def _stdin_bytes():
    """stdin as bytes; a closed stdin (``<&-``: Python's ``sys.stdin`` is ``None``) reads as
    the descriptor error it is."""
    stdin = sys.stdin
    if stdin is None:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))
    return getattr(stdin, "buffer", None) or stdin


def read_body(options: dict, stdin=None) -> str:
    """The message body from exactly one of --text, --text - or --text-file (cli.md §4.4.1)."""
    text, path = options.get("text"), options.get("text_file")
    if (text is None) == (path is None):
        raise ValidationError("--text and --text-file are mutually exclusive; supply exactly one.")
    limit = max_body_bytes()
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data, total = _read_limited(fh, limit)
        except OSError as exc:
            raise ValidationError(
                f"cannot read --text-file '{path}': {exc.strerror or exc}"
            ) from None
    elif text == "-":
        try:
            stream = stdin if stdin is not None else _stdin_bytes()
            data, total = _read_limited(stream, limit)
        except (OSError, ValueError) as exc:
            raise ValidationError(
                f"cannot read stdin: {getattr(exc, 'strerror', None) or exc}"
            ) from None
    else:
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError("message text is not valid UTF-8.") from None
        total = len(data)
    if len(data) > limit:
        # The exact size when it is known without reading on (argv, a regular file).
        size = str(total) if total is not None and total > limit else f"over {limit}"
        raise ValidationError(
            f"message text is {size} bytes; the limit is {limit} bytes (CAFLEET_MAX_BODY_BYTES)."
        )
    try:
        body = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError("message text is not valid UTF-8.") from None
    if not body:
        raise ValidationError("message text may not be empty.")
    return body
