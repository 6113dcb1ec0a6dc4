"""Issue 11 item 18: ``.ci/run`` on a fresh Debian.

Python >= 3.11 is checked first with a clear message (before anything is installed),
``python3-venv`` and ``git`` are installed when missing, and a half-made ``.venv`` (no
``.venv/bin/python``, or no working pip) is created again instead of failing forever.
The venv logic lives in ``.ci/venv`` (shared with ``scripts/demo``).
"""

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.e2e  # runs cafleet or scripts in subprocesses


def make_checkout(tmp_path):
    """A copy of the CI scripts with stand-ins for everything slow or system-changing."""
    root = tmp_path / "checkout"
    (root / ".ci").mkdir(parents=True)
    (root / "scripts").mkdir()
    for name in ("run", "venv"):
        shutil.copy2(REPO / ".ci" / name, root / ".ci" / name)
    test = root / "scripts" / "test"
    test.write_text("#!/bin/sh\necho suite-ran\n")
    test.chmod(0o755)
    (root / "requirements-dev.txt").write_text("")
    fake_bin = tmp_path / "fakebin"
    fake_bin.mkdir()
    calls = tmp_path / "apt-calls"
    for tool in ("apt-get", "sudo"):
        script = fake_bin / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{calls}"\n')
        script.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TMUX", "CAFLEET_", "PYTHON"))}
    env["PATH"] = f"{fake_bin}{os.pathsep}{env['PATH']}"
    return root, env, calls


def old_python(tmp_path, version="3.9.2"):
    stub = tmp_path / "python-old"
    stub.write_text(f'#!/bin/sh\necho "{version}"\n')
    stub.chmod(0o755)
    return stub


@pytest.mark.parametrize("version", ["3.9.2", "3.10.12", "2.7.18"])
def test_old_python_is_refused_first_with_a_clear_message(tmp_path, version):
    root, env, calls = make_checkout(tmp_path)
    stub = old_python(tmp_path, version)
    proc = subprocess.run(
        [str(root / ".ci" / "run")],
        env={**env, "PYTHON": str(stub)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr == (
        f"Error: cafleet needs Python 3.11 or newer; {stub} is {version}. Install Python "
        "3.11+ and run again (or set PYTHON=/path/to/python3.11).\n"
    )
    assert not calls.exists()  # nothing installed
    assert not (root / ".venv").exists()
    assert "suite-ran" not in proc.stdout


def test_missing_python_named(tmp_path):
    root, env, calls = make_checkout(tmp_path)
    proc = subprocess.run(
        [str(root / ".ci" / "run")],
        env={**env, "PYTHON": str(tmp_path / "no-such-python")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr == f"Error: PYTHON={tmp_path / 'no-such-python'} not found.\n"
    assert not calls.exists()


def run_venv(root, env):
    return subprocess.run(
        [str(root / ".ci" / "venv")],
        env={**env, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=300,
    )


def pip_works(root) -> bool:
    proc = subprocess.run(
        [str(root / ".venv" / "bin" / "python"), "-m", "pip", "--version"],
        capture_output=True,
        timeout=60,
    )
    return proc.returncode == 0


def test_venv_without_python_is_recreated(tmp_path):
    root, env, _ = make_checkout(tmp_path)
    (root / ".venv").mkdir()
    (root / ".venv" / "pyvenv.cfg").write_text("home = /nowhere\n")  # interrupted creation
    proc = run_venv(root, env)
    assert proc.returncode == 0, proc.stderr
    assert "incomplete or broken" in proc.stdout
    assert pip_works(root)


def test_venv_without_pip_is_recreated(tmp_path):
    root, env, _ = make_checkout(tmp_path)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / ".venv")], check=True)
    assert not pip_works(root)
    proc = run_venv(root, env)
    assert proc.returncode == 0, proc.stderr
    assert "incomplete or broken" in proc.stdout
    assert pip_works(root)
    again = run_venv(root, env)  # a working .venv is left alone
    assert again.returncode == 0 and again.stdout == ""


def test_ci_run_checks_python_and_venv_before_pip_and_installs_git_and_venv():
    text = (REPO / ".ci" / "run").read_text()
    assert text.index(".ci/venv --check-python") < text.index("apt-get install")
    assert "missing+=(git)" in text and "missing+=(python3-venv)" in text
    assert text.index("\n.ci/venv\n") < text.index("pip install")
