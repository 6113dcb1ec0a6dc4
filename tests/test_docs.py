"""Docs tests: every command and error string quoted in ``skills/`` and ``docs/`` is real.

The rules for what counts as a command line or an error string, and how each is checked,
are in :mod:`tests.doc_checker`.

Also: SKILL.md front matter, no raw tmux subcommands in ``skills/``, the plugin manifests and
the file list of skills.md §0. ``TestCheckerCatches`` feeds the same checker bad snippets to
prove it can fail.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.doc_checker import (
    BANNED_TMUX,
    CONTRACT_DIR,
    REPO,
    _rel,
    _unique_ids,
    check_command,
    check_document,
    check_error,
    contract_templates,
    doc_files,
    extract_commands,
    extract_errors,
    find_template,
)

# skills.md §0: the files the project ships for agents.
SHIPPED_FILES = (
    "skills/cafleet/SKILL.md",
    "skills/cafleet/reference/director.md",
    "skills/cafleet/reference/broadcast.md",
    "skills/cafleet/reference/exec-routing.md",
    "skills/cafleet/reference/recovery.md",
    "skills/cafleet/reference/legacy-flags.md",
    "skills/cafleet/roles/director.md",
    "skills/cafleet/roles/member.md",
    "skills/agent-team-monitoring/SKILL.md",
    "skills/agent-team-supervision/SKILL.md",
    "docs/codex-members.md",
)
SKILL_NAMES = ("cafleet", "agent-team-monitoring", "agent-team-supervision")


# ================================================================================ the cases
DOCS = {_rel(p): p.read_text(encoding="utf-8") for p in doc_files()}
COMMANDS = [s for path, text in DOCS.items() for s in extract_commands(text, path)]
ERRORS = [s for path, text in DOCS.items() for s in extract_errors(text, path)]


def test_docs_found():
    assert {"skills/cafleet/SKILL.md", "docs/codex-members.md"} <= set(DOCS)
    assert len(COMMANDS) >= 60, [s.where for s in COMMANDS]
    assert len(ERRORS) >= 5
    # Each extraction path is exercised by the real docs.
    assert any("| cafleet" in DOCS[s.path].splitlines()[s.line - 1] for s in COMMANDS)
    assert any(DOCS[s.path].splitlines()[s.line - 1].lstrip().startswith("|") for s in COMMANDS)


@pytest.mark.parametrize("snippet", COMMANDS, ids=_unique_ids(COMMANDS))
def test_command_line_parses(snippet):
    assert check_command(snippet.text) is None, (
        f"{snippet.where}: {snippet.text}\n  {check_command(snippet.text)}"
    )


@pytest.mark.parametrize("snippet", ERRORS, ids=_unique_ids(ERRORS))
def test_error_string_is_printed_by_source(snippet):
    assert check_error(snippet.text) is None, f"{snippet.where}: {snippet.text}"


@pytest.mark.parametrize("snippet", ERRORS, ids=_unique_ids(ERRORS))
def test_error_string_is_in_contract(snippet):
    if not contract_templates():
        pytest.skip(f"contract not found in {CONTRACT_DIR}")
    assert find_template(snippet.text, contract_templates()) is not None, (
        f"{snippet.where}: {snippet.text} is not an error text of cli.md / tmux.md"
    )


@pytest.mark.parametrize("path", sorted(DOCS), ids=str)
def test_no_problems_in_document(path):
    """The whole-document checker (also covers raw tmux words) finds nothing."""
    assert check_document(DOCS[path], path) == []


# ---------------------------------------------------------------------- front matter, files
def _front_matter(text: str) -> dict[str, str]:
    m = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert m, "SKILL.md must start with a --- front matter block"
    fields = {}
    for line in m.group(1).splitlines():
        key, sep, value = line.partition(":")
        assert sep and key.strip() and not line.startswith(" "), f"bad line {line!r}"
        fields[key.strip()] = value.strip()
    return fields


@pytest.mark.parametrize("name", SKILL_NAMES)
def test_skill_front_matter(name):
    fields = _front_matter((REPO / "skills" / name / "SKILL.md").read_text(encoding="utf-8"))
    assert fields.get("name") == name
    description = fields.get("description", "")
    assert description, "description missing"
    assert description.endswith("."), "description must be one full sentence"
    assert not re.search(r"[.!?]\s", description), f"more than one sentence: {description}"


def test_no_raw_tmux_subcommands_in_skills():
    offenders = []
    for path in sorted((REPO / "skills").rglob("*")):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            for lineno, line in enumerate(text.splitlines(), 1):
                offenders += [f"{_rel(path)}:{lineno}: {w}" for w in BANNED_TMUX if w in line]
    assert offenders == []


def test_plugin_manifests():
    plugin = json.loads((REPO / ".claude-plugin" / "plugin.json").read_text(encoding="utf-8"))
    assert plugin["name"] == "cafleet"
    skills_dir = (REPO / ".claude-plugin").parent / plugin.get("skills", "./skills/")
    for name in SKILL_NAMES:
        assert (skills_dir / name / "SKILL.md").is_file(), name
    market = json.loads((REPO / ".claude-plugin" / "marketplace.json").read_text(encoding="utf-8"))
    assert [p["name"] for p in market["plugins"]] == ["cafleet"]


@pytest.mark.parametrize("relpath", SHIPPED_FILES)
def test_shipped_file_exists(relpath):
    assert (REPO / relpath).is_file()


def test_shipped_list_matches_contract():
    spec = CONTRACT_DIR / "skills.md"
    if not spec.exists():
        pytest.skip(f"contract not found in {CONTRACT_DIR}")
    block = re.search(r"## 0\..*?```\n(.*?)```", spec.read_text(encoding="utf-8"), re.S)
    assert block
    listed, prefix = [], []
    for line in block.group(1).splitlines():
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip())) // 2
        word = line.split()[0]
        if word.endswith("/"):
            prefix = prefix[:depth] + [word.rstrip("/")]
        else:
            listed.append("/".join(prefix[:depth] + [word]))
    assert sorted(listed) == sorted(SHIPPED_FILES)


# ------------------------------------------------------------------------- negative cases
BAD_DOC = """\
# A broken skill

```bash
cafleet --session-id <session-id> message poll --agnet-id <agent-id>
cafleet --session-id <session-id> agent list --agent-id <agent-id> --json
cafleet --session-id <session-id> message shout --agent-id <agent-id> --text "hi"
cat <<'BODY' | cafleet --session-id <session-id> mesage send --agent-id <agent-id> --text -
BODY
```

Members run `cafleet --session-id <sesion-id> message poll --agent-id <agent-id>`; a bad name
fails with `Error: the agent name is too shiny.`
"""


class TestCheckerCatches:
    """The checker above reports each kind of mistake (so the real-doc cases can fail)."""

    def problems(self) -> list[str]:
        return check_document(BAD_DOC, "skills/bad/SKILL.md")

    def test_misspelled_flag(self):
        assert any(":4:" in p and "No such option: --agnet-id" in p for p in self.problems())

    def test_flag_in_wrong_position(self):
        assert check_command("cafleet --json --session-id S agent list --agent-id A") is None
        assert any(":5:" in p and "No such option: --json" in p for p in self.problems())

    def test_nonexistent_command(self):
        problems = self.problems()
        assert any(":6:" in p and "No such command 'shout'." in p for p in problems)
        assert any(":7:" in p and "No such command 'mesage'." in p for p in problems)
        assert any(
            "No such command 'frobnicate'." in p
            for p in check_document("```\ncafleet frobnicate\n```\n", "docs/x.md")
        )

    def test_unknown_id_placeholder(self):
        assert any(":11:" in p and "<sesion-id>" in p for p in self.problems())

    def test_made_up_error_string(self):
        assert any(":12:" in p and "too shiny" in p for p in self.problems())
        assert check_error("Error: the name 'Administrator' is reserved.") is None
        assert check_error("Error: the name 'Administrator' is resrved.") is not None
        assert check_error("Error: Task <tid> not foundd") is not None
        assert check_error("Error: <message>") is None
        if contract_templates():
            assert (
                find_template("Error: the agent name is too shiny.", contract_templates()) is None
            )

    def test_raw_tmux_in_skills(self):
        text = "Run `tmux send-keys -t %1 hi`.\n"
        assert any("send-keys" in p for p in check_document(text, "skills/x/SKILL.md"))

    def test_abbreviation_rule(self):
        # "…" as a value is not an abbreviation: the line must parse completely.
        assert (
            check_command('cafleet --session-id S message send --agent-id A --text "…"')
            == "parser rejects it (cafleet message send): Error: Missing option '--to'."
        )
        # A standalone "…" may leave required options out, nothing else.
        assert check_command("cafleet --session-id S member create … --coding-agent codex") is None
        assert (
            check_command("cafleet --session-id S member create … --codin-agent codex") is not None
        )
        assert check_command("cafleet member create … --coding-agent codex") is not None
        assert check_command("cafleet --session-id S member") is not None
