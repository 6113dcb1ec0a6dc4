"""The member's spawn prompt and command line (tmux.md §4.1, §4.2): the default template,
custom prompts with ``{session_id}``/``{agent_id}``/``{director_agent_id}``, and the size
checks that run before anything is registered."""

from __future__ import annotations

import re
import string

DEFAULT_PROMPT = (
    "Member of cafleet session {session_id} (agent={agent_id}, "
    "director={director_agent_id}).\n"
    "Load skill 'cafleet'. Bash auto-approves. Poll: cafleet --session-id {session_id} "
    "message poll --agent-id {agent_id}"
)
_BRACES_HINT = "Double literal braces ({{, }}) to keep them as text."
_PLACEHOLDERS = "{session_id}, {agent_id}, {director_agent_id}"
#: Largest width or precision a custom prompt's replacement field may ask for. A field such
#: as ``{agent_id:>99999999999}`` would otherwise try to build a string of that many
#: characters (MemoryError) — the whole prompt must fit one command-line argument anyway.
MAX_FORMAT_WIDTH = 10000
#: Bound on a custom prompt's length once its widths are applied (many fields of width
#: 10000 each would still need gigabytes); larger is refused before registration.
MAX_PROMPT_CHARS = 131072


def backend_argv(coding_agent: str, name: str, prompt: str) -> list[str]:
    """The member's program and arguments (tmux.md §4.2); the prompt is one argument, last."""
    if coding_agent == "codex":
        return ["codex", "--ask-for-approval", "never", "--sandbox", "workspace-write", prompt]
    return ["claude", "--permission-mode", "dontAsk", "--name", name, prompt]


class PromptError(Exception):
    """A custom prompt that cannot be resolved; ``str(exc)`` is the contract's reason."""


def build_prompt(words, *, session_id: str, agent_id: str, director_agent_id: str) -> str:
    """Resolve the spawn prompt (tmux.md §4.1) with Python format-string rules.

    ``words`` are the words after ``--``, joined with single spaces; none (or only empty
    strings) selects the two-line default template.
    """
    words = tuple(words or ())
    template = " ".join(words) if any(words) else DEFAULT_PROMPT
    try:
        return template.format(
            session_id=session_id, agent_id=agent_id, director_agent_id=director_agent_id
        )
    except KeyError as exc:
        name = exc.args[0] if exc.args else ""
        raise PromptError(
            f"Unknown placeholder '{name}' in custom prompt. Supported "
            f"placeholders: {_PLACEHOLDERS}. {_BRACES_HINT}"
        ) from None
    except (IndexError, ValueError, AttributeError, TypeError) as exc:
        raise PromptError(f"Malformed custom prompt: {exc}. {_BRACES_HINT}") from None


def check_template_widths(words) -> None:
    """Refuse a custom prompt whose widths or precisions exceed :data:`MAX_FORMAT_WIDTH`.

    Runs before anything is registered. Only the sizes are checked here: any other template
    error is left to :func:`build_prompt` (which runs after registration, cli.md §4.5.1
    step 7). Every number in a format spec counts, nested fields included.
    """
    words = tuple(words or ())
    if not any(words):
        return
    template = " ".join(words)
    pending = [template]
    padding = 0
    while pending:
        try:
            fields = list(string.Formatter().parse(pending.pop()))
        except ValueError:
            return  # malformed: build_prompt reports it
        for _literal, _name, spec, _conversion in fields:
            if not spec:
                continue
            for number in re.findall(r"\d+", spec):
                if len(number.lstrip("0")) > 5 or int(number) > MAX_FORMAT_WIDTH:
                    raise PromptError(
                        f"Malformed custom prompt: format width or precision {number} is "
                        f"larger than {MAX_FORMAT_WIDTH}. {_BRACES_HINT}"
                    )
                padding += int(number)
            if "{" in spec:
                pending.append(spec)
    if len(template) + padding > MAX_PROMPT_CHARS:
        raise PromptError(
            f"Malformed custom prompt: its format widths would make it longer than "
            f"{MAX_PROMPT_CHARS} characters. {_BRACES_HINT}"
        )
