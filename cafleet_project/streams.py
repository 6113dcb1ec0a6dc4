"""Standard streams that never fail a command (issue 11 items 2 and 3).

For the length of one command the entry point replaces ``sys.stdout`` and ``sys.stderr``
with :class:`GuardedStream` wrappers:

* text is written as UTF-8 whatever the locale (``PYTHONIOENCODING=ascii``, ``LANG=C``):
  the process's own streams are switched to UTF-8, and a stream that is not ours and cannot
  encode a character (a redirected in-process stream) gets it backslash-escaped instead;
* a write or flush that fails (stdout closed with ``>&-``, a reader that went away, a full
  disk) is recorded, never raised: every later write is dropped, and the entry point decides
  the exit code from what the command did (see ``cafleet_project.cli.main``).

A closed standard file descriptor (0, 1 or 2) is held open on ``/dev/null`` for the length
of the command, so no file the command opens can land on it; Python's ``None`` for that
stream is kept as the sign that it was closed. Standard library only.
"""

from __future__ import annotations

import errno
import io
import os
import sys

CLOSED = OSError(errno.EBADF, os.strerror(errno.EBADF))


class GuardedStream(io.TextIOBase):
    """A text stream over ``target`` (``None``: closed) whose writes never raise."""

    def __init__(self, target, name: str):
        super().__init__()
        self.target = target
        self.name = name
        self.failure: BaseException | None = CLOSED if target is None else None

    # -- what io and Django look at ---------------------------------------------------------
    @property
    def encoding(self) -> str:
        return "utf-8"

    @property
    def errors(self) -> str:
        return "backslashreplace"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        try:
            return self.failure is None and bool(self.target.isatty())
        except (AttributeError, OSError, ValueError):
            return False

    def fileno(self) -> int:
        if self.target is None:
            raise io.UnsupportedOperation(f"{self.name} is closed")
        return self.target.fileno()

    # -- writing ------------------------------------------------------------------------------
    def write(self, text: str) -> int:
        if self.failure is None:
            try:
                try:
                    self.target.write(text)
                except UnicodeEncodeError:
                    encoding = getattr(self.target, "encoding", None) or "ascii"
                    self.target.write(text.encode(encoding, "backslashreplace").decode(encoding))
            except (OSError, ValueError) as exc:  # closed, broken pipe, disk full
                self.failure = exc
        return len(text)

    def flush(self) -> None:
        if self.failure is None:
            try:
                self.target.flush()
            except (OSError, ValueError) as exc:
                self.failure = exc

    def close(self) -> None:  # the wrapped stream belongs to the caller
        self.flush()


def reason(exc: BaseException) -> str:
    """The words for a stream failure: ``Broken pipe``, ``Bad file descriptor``..."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return " ".join(str(exc).split()) or type(exc).__name__


def is_broken_pipe(exc: BaseException | None) -> bool:
    return isinstance(exc, BrokenPipeError) or (
        isinstance(exc, OSError) and exc.errno == errno.EPIPE
    )


class Streams:
    """Install guarded ``sys.stdout``/``sys.stderr`` for one command; :meth:`restore` after."""

    def __init__(self):
        self.saved = (sys.stdout, sys.stderr)
        self.held: list[int] = []
        for fd, stream in ((0, sys.stdin), (1, sys.stdout), (2, sys.stderr)):
            if stream is None:
                self._hold(fd)
        for stream in self.saved:
            if stream is not None and stream in (sys.__stdout__, sys.__stderr__):
                _to_utf8(stream)
        self.stdout = GuardedStream(sys.stdout, "stdout")
        self.stderr = GuardedStream(sys.stderr, "stderr")
        sys.stdout, sys.stderr = self.stdout, self.stderr

    def _hold(self, fd: int) -> None:
        """A closed standard descriptor gets ``/dev/null`` until :meth:`restore`."""
        try:
            os.fstat(fd)
            return  # open after all (sys.stdin replaced by the caller)
        except OSError:
            pass
        try:
            null = os.open(os.devnull, os.O_RDWR)
        except OSError:
            return
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
        self.held.append(fd)

    def flush(self) -> None:
        self.stdout.flush()
        self.stderr.flush()

    def restore(self) -> None:
        self.flush()
        for guarded in (self.stdout, self.stderr):
            if guarded.failure is not None and guarded.target is not None:
                _silence(guarded.target)
        sys.stdout, sys.stderr = self.saved
        for fd in self.held:
            try:
                os.close(fd)
            except OSError:
                pass


def _to_utf8(stream) -> None:
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is None:
        return
    try:
        reconfigure(encoding="utf-8", errors="backslashreplace")
    except (OSError, ValueError, io.UnsupportedOperation):
        pass


def _silence(stream) -> None:
    """Point a failed process stream at ``/dev/null`` so that the interpreter's own flush at
    exit does not fail again (and print "Exception ignored ... BrokenPipeError")."""
    if stream not in (sys.__stdout__, sys.__stderr__):
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())
        os.close(null)
    except (OSError, ValueError):
        pass
