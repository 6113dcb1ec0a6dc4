"""Issue 11 item 8: names that are empty, break lines, or only look like ``Administrator``.

``agent register`` and ``member create`` accepted ``Administrator\\u200b``, a Cyrillic
lookalike, an empty name and U+2028. Empty names and line/paragraph separators are refused
with exit 2, lookalikes of the reserved name with the contract's reserved-name error.
"""

import pytest

from broker.models import Agent
from broker.services import is_reserved_name

RESERVED = "Error: the name 'Administrator' is reserved.\n"

LOOKALIKES = [
    "Administrator\u200b",
    "\u200bAdministrator",
    "Admin\u200distrator",
    "\u0410dministr\u0430tor",  # Cyrillic А, а
    "Adm\u0456n\u0456strat\u043er",  # Cyrillic і, о
    "\u0391dministrator",  # Greek Α
    "ＡＤＭＩＮＩＳＴＲＡＴＯＲ",  # fullwidth
    "𝐀𝐝𝐦𝐢𝐧𝐢𝐬𝐭𝐫𝐚𝐭𝐨𝐫",  # mathematical bold
    "Administrator\u00a0",
    "Adm1nistrat0r",
    "AdmInistrator",
    "Adrninistrator",  # r + n for m
    "Admínistrator",  # combining accent
    "\u202eAdministrator\u202c",
    "Administrator\ufeff",
]


def register(cli, fleet, name):
    return cli("--session-id", fleet.sid, "agent", "register", "--name", name, "--description", "d")


def member_create(cli, fleet, name):
    return cli(
        "--session-id",
        fleet.sid,
        "member",
        "create",
        "--agent-id",
        fleet.director,
        "--name",
        name,
        "--description",
        "d",
    )


def agent_names(fleet) -> list[str]:
    return sorted(Agent.objects.filter(session_id=fleet.sid).values_list("name", flat=True))


@pytest.mark.django_db
@pytest.mark.parametrize("name", LOOKALIKES)
def test_lookalikes_of_administrator_are_reserved(cli, fleet, name):
    before = agent_names(fleet)
    for command in (register, member_create):
        result = command(cli, fleet, name)
        assert (result.code, result.err) == (1, RESERVED), (command.__name__, result)
    assert agent_names(fleet) == before


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["", "   ", "\u200b", "\u200b\u200c\ufeff"])
def test_empty_names_are_refused(cli, fleet, name):
    before = agent_names(fleet)
    for command in (register, member_create):
        result = command(cli, fleet, name)
        assert result.code == 2, result
        assert result.err.endswith("\nError: --name may not be empty.\n"), result
    assert agent_names(fleet) == before


@pytest.mark.django_db
@pytest.mark.parametrize("separator", ["\u2028", "\u2029"])
def test_line_and_paragraph_separators_are_refused(cli, fleet, separator):
    before = agent_names(fleet)
    for command in (register, member_create):
        result = command(cli, fleet, f"worker{separator}two")
        assert result.code == 2
        assert result.err.endswith(
            "\nError: --name may not contain line or paragraph separators.\n"
        )
    result = cli(
        "--session-id",
        fleet.sid,
        "agent",
        "register",
        "--name",
        "ok",
        "--description",
        f"a{separator}b",
    )
    assert result.err.endswith(
        "\nError: --description may not contain line or paragraph separators.\n"
    )
    result = cli("session", "create", "--label", f"x{separator}y")
    assert result.code == 2
    assert result.err.endswith("\nError: --label may not contain line or paragraph separators.\n")
    assert agent_names(fleet) == before


@pytest.mark.django_db
def test_ordinary_names_still_register(cli, fleet):
    for name in ("Admin", "Administrators", "Director-2", "Анна", "管理者", "administrat"):
        assert register(cli, fleet, name).code == 0, name
        assert not is_reserved_name(name)
