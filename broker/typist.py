"""The typist: one writer per pane, bracketed paste, Enter, verify (docs/delivery.md §3-§5).

:class:`TypistLock` keeps two cafleet processes from typing into one pane at once;
:func:`type_text` gates the pane (:mod:`broker.panes`), pastes the text through a private
named tmux buffer, sends Enter in a separate call and watches the screen
(:mod:`broker.screen`) until the text has left the input box; :func:`type_freetext` is the
answer to a question's free-text option.

Every tmux call goes through :mod:`broker.tmux` (the single door), looked up on that module
at call time, as are its timing constants and its clock (``tmux.time``), so a test that
patches those on ``broker.tmux`` reaches this module too. Names defined here (``pane_gate``,
``type_text``, ...) are reachable as ``tmux.<name>`` but are patched where they live.
"""

import os

from broker import tmux
from broker.panes import Delivery, _check, _failed, _guarded, _held
from broker.screen import Screen, classify_screen

# ------------------------------------------------------------------ typist lock


def _server_key() -> str:
    """The tmux server this process reaches: ``$TMUX``'s socket, else the default one."""
    value = os.environ.get("TMUX", "")
    if value:
        return os.path.realpath(value.split(",", 1)[0])
    base = os.environ.get("TMUX_TMPDIR") or "/tmp"
    return os.path.realpath(os.path.join(base, f"tmux-{os.getuid()}", "default"))


def runtime_dir() -> str:
    """A private (0700, ours, not a link) directory for the typist locks.

    ``$XDG_RUNTIME_DIR/cafleet`` when that is set, else ``/tmp/cafleet-<uid>``. Raises
    ``OSError`` when the directory exists but is not private.
    """
    uid = os.getuid()
    base = os.environ.get("XDG_RUNTIME_DIR")
    path = os.path.join(base, "cafleet") if base else f"/tmp/cafleet-{uid}"
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    import stat as stat_mod

    if not stat_mod.S_ISDIR(info.st_mode) or info.st_uid != uid or info.st_mode & 0o077:
        raise OSError(f"{path} is not a private directory of uid {uid}")
    return path


class TypistLock:
    """One typist per pane and tmux server at a time, across processes (``flock`` on a
    0600 file in :func:`runtime_dir`). ``acquire`` waits up to ``wait`` seconds."""

    def __init__(self, pane_id: str, *, wait: float | None = None):
        import hashlib

        key = f"{_server_key()}\0{pane_id}".encode("utf-8", "surrogateescape")
        self.path = os.path.join(runtime_dir(), f"typist-{hashlib.sha256(key).hexdigest()[:32]}")
        self.wait = tmux.LOCK_WAIT if wait is None else wait
        self.fd: int | None = None

    def acquire(self) -> bool:
        import fcntl

        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(self.path, flags, 0o600)
        deadline = tmux.time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self.fd = fd
                return True
            except BlockingIOError:
                if tmux.time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                tmux.time.sleep(0.005)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None


# ------------------------------------------------------------------ typing


def paste(pane_id: str, text: str) -> None:
    """Bracketed paste of ``text`` through a private named buffer, deleted after use.

    ``load-buffer -b cafleet-<random> -`` reads the text from stdin (no argument parsing of
    the text at all), ``paste-buffer -p -d`` pastes it (bracketed when the application
    asked for it) and deletes the buffer. Raises :class:`TmuxError`.
    """
    import secrets

    name = f"cafleet-{secrets.token_hex(8)}"
    tmux.run(["load-buffer", "-b", name, "-"], timeout=tmux.PREVIEW_TIMEOUT, input=text)
    try:
        tmux.run(
            ["paste-buffer", "-p", "-d", "-b", name, "-t", pane_id], timeout=tmux.PREVIEW_TIMEOUT
        )
    except tmux.TmuxError:
        try:
            tmux.run(["delete-buffer", "-b", name], timeout=tmux.PREVIEW_TIMEOUT)
        except tmux.TmuxError:
            pass
        raise


def _marker(text: str) -> str:
    """A short piece of the pasted text to recognise it in the input box."""
    first = " ".join(text.split("\n", 1)[0].split())
    return first.lstrip("!").strip()[:12]


def _watch(pane_id: str, coding_agent: str, done, timeout: float) -> tuple[Screen, str]:
    """Poll the screen until ``done(screen, raw)`` or ``timeout``; the last one seen."""
    deadline = tmux.time.monotonic() + timeout
    while True:
        raw = tmux.capture_screen(pane_id)
        seen = classify_screen(raw, coding_agent)
        if done(seen, raw) or tmux.time.monotonic() >= deadline:
            return seen, raw
        tmux.time.sleep(tmux.VERIFY_POLL)


def _submit(pane_id: str, text: str, coding_agent: str, gate: Screen, before: str) -> Delivery:
    """Paste, wait for the text to show, Enter, verify; re-send only Enter (bounded).

    ``gate`` is what the gate saw, ``before`` its capture. The text "shows" when the input box holds text; then
    Enter goes in a separate call. Verified when the input box is empty again or the client
    shows its queued marker. Enter is re-sent only while the input box still holds this
    text, never when a dialog or menu owns the screen. A line-oriented REPL (prompt ``>``,
    the terminal's own line editing) gets the Enter at once and no re-send: its terminal
    cannot lose an Enter, and it shows no input box to watch.
    """
    marker = _marker(text)

    def shows_text(seen: Screen, raw: str) -> bool:
        # A frame without the input box may be a redraw caught halfway: keep looking.
        return bool(seen.prompt) and bool(seen.input_text) and seen.reason in (None, "draft")

    settled: list[bool] = []

    def left_input(seen: Screen, raw: str) -> bool:
        # Empty input (or queued) must be seen twice in a row: one frame may be a redraw
        # caught halfway. No input box (a REPL printing, a dialog): keep looking.
        settled.append(seen.input_empty or seen.queued)
        if settled[-2:] == [True, True]:
            return True
        return bool(seen.prompt and seen.input_text and marker not in seen.input_text)

    paste(pane_id, text)
    if gate.prompt == ">":
        tmux.run(["send-keys", "-t", pane_id, "Enter"], timeout=tmux.PREVIEW_TIMEOUT)
        seen, _raw = _watch(pane_id, coding_agent, lambda s, r: s.input_empty, tmux.ENTER_WAIT)
        return Delivery("delivered", None, seen.input_empty)
    seen, raw = _watch(pane_id, coding_agent, shows_text, tmux.PASTE_SHOW_WAIT)
    if not shows_text(seen, raw) and raw != before:
        # The text never showed in the input box and the screen changed (a dialog or menu
        # took it): an Enter could answer a dialog, so none is sent. An unchanged screen is
        # a client that has not read anything yet: its Enter goes in after the paste.
        return Delivery("delivered", None, False)
    for _ in range(tmux.ENTER_TRIES):
        tmux.run(["send-keys", "-t", pane_id, "Enter"], timeout=tmux.PREVIEW_TIMEOUT)
        settled.clear()
        seen, _raw = _watch(pane_id, coding_agent, left_input, tmux.ENTER_WAIT)
        if settled[-2:] == [True, True]:
            return Delivery("delivered", None, True)
        if not seen.prompt or not seen.input_text or marker not in seen.input_text:
            # No input box, or not our text: never press Enter on it.
            return Delivery("delivered", None, False)
    return Delivery("delivered", None, False)


def type_text(pane_id: str, text: str, *, coding_agent: str = "claude") -> Delivery:
    """Gate, then paste ``text`` + Enter and verify, all under the pane's typist lock.

    Returns ``held`` (gate refused, nothing typed), ``failed`` (pane gone, tmux error) or
    ``delivered`` (``verified`` when the text was seen leaving the input box). Never raises.
    """

    def attempt() -> Delivery:
        try:
            lock = TypistLock(pane_id)
        except OSError:
            return _failed("tmux_error")
        if not lock.acquire():
            return _held("busy")  # another typist kept the pane longer than LOCK_WAIT
        try:
            verdict, seen, raw = _check(pane_id, coding_agent)
            if verdict.status != "delivered":
                return verdict
            return _submit(pane_id, text, coding_agent, seen, raw)
        finally:
            lock.release()

    return _guarded(attempt)


def type_freetext(pane: str, text: str, *, coding_agent: str = "claude") -> None:
    """Option ``4`` as a plain key, then ``text`` as a bracketed paste through a private
    named buffer, ``Enter``, and a verify (docs/delivery.md): ``Enter`` is re-sent only while
    the text still sits in an input box (at most ``ENTER_TRIES`` in all). Empty text: ``4``
    and ``Enter`` only. Under the pane's typist lock, so no preview interleaves.

    Raises :class:`TmuxError` (also when another typist keeps the pane past ``LOCK_WAIT``).
    """
    lock = TypistLock(pane)
    if not lock.acquire():
        raise tmux.TmuxError(f"pane {pane} is busy: another sender is typing into it")
    try:
        tmux.run(["send-keys", "-t", pane, "4"])
        marker = _marker(text)
        if not text:
            tmux.time.sleep(tmux.LITERAL_PAUSE)
            tmux.run(["send-keys", "-t", pane, "Enter"])
            return

        def in_box(seen: Screen) -> bool:
            return bool(marker) and bool(seen.prompt) and marker in seen.input_text

        paste(pane, text)
        # Enter goes in a later call, once the client has shown the text (or after a bound).
        _watch(
            pane, coding_agent, lambda s, r: marker in tmux.clean_capture(r), tmux.PASTE_SHOW_WAIT
        )
        for _ in range(tmux.ENTER_TRIES):
            tmux.run(["send-keys", "-t", pane, "Enter"])
            seen, _raw = _watch(pane, coding_agent, lambda s, r: not in_box(s), tmux.ENTER_WAIT)
            if not in_box(seen):
                return
    finally:
        lock.release()
