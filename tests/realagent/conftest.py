"""Fixtures of the real-client tier (pytest marker ``realagent``).

``mock_model``
    A started :class:`~tests.realagent.mockmodel.MockModel` on loopback; stopped at teardown.
``agent_workdir``
    A private directory for the clients' homes and project folders. It lives under
    ``/var/tmp`` (Codex refuses to create its helper links under ``/tmp`` and then shows a
    warning in its footer); removed at teardown.
``start_agent``
    A factory: ``start_agent("claude" | "codex", extra_args=())`` starts the installed pinned
    client in its own window of the isolated tmux server (``tmux_server``), pointed at
    ``mock_model`` with a private HOME / CODEX_HOME, waits for its idle prompt and returns a
    :class:`~tests.realagent.harness.RealAgent`. Every client it started (and Codex's
    background ``codex app-server``) is killed by pid at teardown.
``claude`` / ``codex``
    ``start_agent("claude")`` / ``start_agent("codex")``.
``fleet``
    A :class:`~tests.realagent.fleet.RealFleet` (a session whose Director is the line
    stand-in) on ``fresh_db`` and ``tmux_server``; members are added by the test.

A missing client skips the test with the reason; with ``CI`` set it fails instead (CI always
installs them with ``scripts/install-agents``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.realagent.fleet import RealFleet
from tests.realagent.harness import RealAgent, agents_dir, client_path
from tests.realagent.mockmodel import MockModel


def pytest_collection_modifyitems(config, items):
    """Every test collected under tests/realagent/ needs the real clients: mark it."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.realagent)
            item.add_marker(pytest.mark.tmux)


def require_client(name: str) -> Path:
    path = client_path(name)
    if path is None:
        reason = (
            f"the real {name} client is not installed in {agents_dir()} "
            f"(run scripts/install-agents)"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture
def mock_model():
    model = MockModel().start()
    try:
        yield model
    finally:
        model.stop()


@pytest.fixture
def agent_workdir():
    base = "/var/tmp" if os.path.isdir("/var/tmp") else None
    path = Path(tempfile.mkdtemp(prefix="cafleet-realagent-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def start_agent(tmux_server, mock_model, agent_workdir):
    started: list[RealAgent] = []

    def _start(name: str, extra_args=(), *, wait: bool = True, wrap: bool = False) -> RealAgent:
        require_client(name)
        workdir = agent_workdir / f"{name}-{len(started)}"
        agent = RealAgent(tmux_server, name, mock_model, workdir, extra_args=extra_args, wrap=wrap)
        started.append(agent)
        agent.start(wait=wait, timeout=60)
        return agent

    try:
        yield _start
    finally:
        for agent in started:
            agent.stop()


@pytest.fixture
def claude(start_agent):
    return start_agent("claude")


@pytest.fixture
def codex(start_agent):
    return start_agent("codex")


@pytest.fixture
def fleet(fresh_db, tmux_server):
    return RealFleet(fresh_db, tmux_server)
