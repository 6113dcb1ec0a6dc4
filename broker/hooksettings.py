"""Claude Code settings that run ``cafleet hook`` (docs/hooks.md).

* Members: ``member create`` writes ``<database dir>/hooks/member-<agent id>.json`` (0600),
  passes it with ``claude --settings <file>`` and removes it with the member. It holds
  cafleet's hooks and the allow rules that let the member run its own ``cafleet`` commands
  (members run with ``--permission-mode dontAsk``, which refuses every tool call that no
  rule allows).
* The Director's own session: only ``cafleet hooks install`` (explicit) adds the hooks to a
  Claude settings file, with a backup; ``cafleet hooks uninstall`` restores the file
  byte for byte when nobody edited it since, else removes exactly cafleet's entries.

Every hook command is a small ``sh`` line: it runs the cafleet binary when it is there,
otherwise it appends one line to the hook log and exits 0, so a missing binary never
breaks the agent's turn. Standard library only.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys

from broker.hook_files import ensure_hooks_dir, hooks_dir, log_path

#: Synchronous hooks: (event, matcher or None). Each runs ``cafleet hook <event>``.
SYNC_EVENTS = (
    ("SessionStart", None),
    ("UserPromptSubmit", None),
    ("PreToolUse", "*"),
    ("PostToolUse", "*"),
    ("PermissionRequest", "*"),
    ("Notification", None),
    ("SessionEnd", None),
)
#: Seconds Claude Code gives a synchronous hook (it needs one read, or one short write).
SYNC_TIMEOUT = 10
#: The Stop hook's waiter: its own timeout, and the hook's (a little longer).
WAIT_TIMEOUT = 3540
WAIT_HOOK_TIMEOUT = 3600
#: Allow rules that let a member run cafleet through its Bash tool.
ALLOW_RULES = ("Bash(cafleet:*)",)
MARK = "cafleet hook"
BACKUP_SUFFIX = ".cafleet-backup.json"


def cafleet_binary() -> str:
    """The ``cafleet`` beside this Python (the installed console script), else on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "cafleet")
    if os.path.isfile(here) and os.access(here, os.X_OK):
        return here
    return shutil.which("cafleet") or "cafleet"


def hook_command(binary: str, args: str, log: str) -> str:
    """``sh`` line: run ``binary hook <args>``; a missing binary is a logged exit 0."""
    b = shlex.quote(binary)
    words = f"hook {args}"
    return (
        f'b={b}; if [ -x "$b" ]; then exec "$b" {words}; fi; umask 077; '
        f"printf '%s cafleet {words}: cafleet binary missing: %s\\n' "
        f'"$(date -u +%Y-%m-%dT%H:%M:%S+00:00)" "$b" >> {shlex.quote(log)}; exit 0'
    )


def hooks_block(binary: str, db_path: str, *, director: bool = False) -> dict:
    """The ``"hooks"`` value: every event cafleet listens to."""
    log = log_path(db_path)
    extra = " --director" if director else ""
    out: dict = {}
    for event, matcher in SYNC_EVENTS:
        entry: dict = {}
        if matcher is not None:
            entry["matcher"] = matcher
        entry["hooks"] = [
            {
                "type": "command",
                "command": hook_command(binary, event + extra, log),
                "timeout": SYNC_TIMEOUT,
            }
        ]
        out[event] = [entry]
    out["Stop"] = [
        {
            "hooks": [
                {
                    "type": "command",
                    "command": hook_command(binary, f"wait --timeout {WAIT_TIMEOUT}{extra}", log),
                    "asyncRewake": True,
                    "timeout": WAIT_HOOK_TIMEOUT,
                }
            ]
        }
    ]
    return out


def member_settings(binary: str, db_path: str) -> dict:
    allow = list(ALLOW_RULES)
    if os.path.isabs(binary):
        allow.append(f"Bash({binary}:*)")
    return {"hooks": hooks_block(binary, db_path), "permissions": {"allow": allow}}


def member_settings_path(db_path: str, agent_id: str) -> str:
    return os.path.join(hooks_dir(db_path), f"member-{agent_id}.json")


def write_private(path: str, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 (a new file replaces the old atomically)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_member_settings(db_path: str, agent_id: str, binary: str | None = None) -> str:
    """Write the member's settings file (0600, in a 0700 directory); return its path."""
    ensure_hooks_dir(db_path)
    path = member_settings_path(db_path, agent_id)
    settings = member_settings(binary or cafleet_binary(), db_path)
    write_private(path, json.dumps(settings, indent=2) + "\n")
    return path


def remove_member_settings(db_path: str, agent_id: str) -> None:
    try:
        os.unlink(member_settings_path(db_path, agent_id))
    except FileNotFoundError:
        pass


# ------------------------------------------------------------------------------ the user's file
def default_settings_file() -> str:
    return os.path.join(os.path.expanduser("~"), ".claude", "settings.json")


def _is_ours(hook: dict) -> bool:
    return isinstance(hook, dict) and MARK in str(hook.get("command", ""))


def strip_ours(settings: dict) -> tuple[dict, list[str]]:
    """``settings`` without cafleet's hook entries; the events they were under."""
    hooks = settings.get("hooks")
    if not isinstance(hooks, dict):
        return settings, []
    removed = []
    new_hooks = {}
    for event, groups in hooks.items():
        if not isinstance(groups, list):
            new_hooks[event] = groups
            continue
        kept_groups = []
        for group in groups:
            inner = group.get("hooks") if isinstance(group, dict) else None
            if isinstance(inner, list) and any(_is_ours(h) for h in inner):
                removed.append(event)
                rest = [h for h in inner if not _is_ours(h)]
                if rest:
                    kept_groups.append({**group, "hooks": rest})
                continue
            kept_groups.append(group)
        if kept_groups:
            new_hooks[event] = kept_groups
    out = dict(settings)
    if new_hooks:
        out["hooks"] = new_hooks
    else:
        out.pop("hooks", None)
    return out, removed


def installed_events(path: str) -> list[str]:
    """Events under which ``path`` runs ``cafleet hook`` (empty when none / unreadable)."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict):
        return []
    return strip_ours(data)[1]


def _read(path: str) -> tuple[bool, str]:
    try:
        with open(path, encoding="utf-8") as fh:
            return True, fh.read()
    except FileNotFoundError:
        return False, ""


class SettingsError(Exception):
    """The settings file cannot be edited; ``str(exc)`` says why."""


def install(path: str, db_path: str, binary: str | None = None) -> list[str]:
    """Add the Director's hooks to ``path`` (backup first); the lines to print."""
    existed, text = _read(path)
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise SettingsError(f"{path} is not valid JSON ({exc}); nothing changed.") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{path} does not hold a JSON object; nothing changed.")
    data, replaced = strip_ours(data)
    ours = hooks_block(binary or cafleet_binary(), db_path, director=True)
    hooks = data.get("hooks") if isinstance(data.get("hooks"), dict) else {}
    for event, groups in ours.items():
        hooks[event] = [*hooks.get(event, []), *groups]
    data["hooks"] = hooks
    new_text = json.dumps(data, indent=2) + "\n"
    backup = path + BACKUP_SUFFIX
    if not os.path.exists(backup):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        write_private(
            backup,
            json.dumps({"existed": existed, "original": text, "installed": new_text}) + "\n",
        )
    else:
        with open(backup, encoding="utf-8") as fh:
            record = json.load(fh)
        record["installed"] = new_text
        write_private(backup, json.dumps(record) + "\n")
    write_private(path, new_text)
    lines = [f"Backup: {backup}"]
    if replaced:
        lines.append(f"Replaced cafleet's earlier hooks in {path}.")
    lines.append(f"Added to {path} (hooks, each runs 'cafleet hook ... --director'):")
    lines += [
        f"  {event}" + (" (background waiter, asyncRewake)" if event == "Stop" else "")
        for event in ours
    ]
    return lines


def uninstall(path: str) -> list[str]:
    """Remove cafleet's hooks from ``path``: byte-identical restore when the file is as
    ``install`` left it, else only cafleet's entries are removed. The lines to print."""
    backup = path + BACKUP_SUFFIX
    existed, text = _read(path)
    record = None
    if os.path.exists(backup):
        with open(backup, encoding="utf-8") as fh:
            record = json.load(fh)
    if record is not None and text == record.get("installed"):
        if record.get("existed"):
            write_private(path, record.get("original", ""))
            lines = [f"Restored {path} from {backup} (byte-identical)."]
        else:
            os.unlink(path)
            lines = [f"Removed {path} (it did not exist before 'cafleet hooks install')."]
        os.unlink(backup)
        return lines
    if not existed:
        return [f"{path} does not exist; nothing to remove."]
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise SettingsError(f"{path} is not valid JSON ({exc}); nothing changed.") from None
    stripped, removed = strip_ours(data if isinstance(data, dict) else {})
    if not removed:
        return [f"No cafleet hooks in {path}; nothing changed."]
    write_private(path, json.dumps(stripped, indent=2) + "\n")
    if record is not None:
        os.unlink(backup)
    return [
        f"Removed cafleet's hooks from {path} ({', '.join(sorted(set(removed)))}); "
        "the file was edited since install, so the rest is kept as it is now."
    ]


def denied_rules(paths) -> list[tuple[str, str]]:
    """(file, rule) for every ``permissions.deny`` rule that would refuse ``cafleet``."""
    found = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            continue
        perms = data.get("permissions") if isinstance(data, dict) else None
        deny = perms.get("deny") if isinstance(perms, dict) else None
        for rule in deny if isinstance(deny, list) else []:
            text = str(rule)
            if text in ("Bash", "Bash(*)", "Bash(:*)") or "cafleet" in text:
                found.append((path, text))
    return found


def settings_files(cwd: str | None = None) -> list[str]:
    """The Claude settings files that apply in ``cwd``: user, project, local project."""
    cwd = cwd or os.getcwd()
    return [
        default_settings_file(),
        os.path.join(cwd, ".claude", "settings.json"),
        os.path.join(cwd, ".claude", "settings.local.json"),
    ]
