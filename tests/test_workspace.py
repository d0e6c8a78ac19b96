import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.models import TestResult
from tasks.workspace import SANDBOX_ENV, SandboxUnavailable, _bwrap_works, run_test_command

PASSING = "def test_ok():\n    assert 1 + 1 == 2\n"
FAILING = "def test_ok():\n    assert 1 + 1 == 3\n\ndef test_fine():\n    assert True\n"


def test_passing_tree_passes(tmp_path: Path) -> None:
    (tmp_path / "test_a.py").write_text(PASSING)
    result = run_test_command(tmp_path, "python -m pytest -q")
    assert result.passed and result.exit_code == 0
    assert result.passed_count == 1 and result.failed_count == 0


def test_failing_tree_fails_with_counts_and_output(tmp_path: Path) -> None:
    (tmp_path / "test_a.py").write_text(FAILING)
    result = run_test_command(tmp_path, "python -m pytest -q")
    assert not result.passed
    assert result.passed_count == 1 and result.failed_count == 1
    assert "FAILED test_a.py::test_ok" in result.output_tail


def test_secrets_do_not_reach_the_test_run(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    (tmp_path / "test_env.py").write_text(
        "import os\n\ndef test_env():\n"
        "    assert 'GITHUB_TOKEN' not in os.environ\n    assert 'OPENAI_API_KEY' not in os.environ\n"
    )
    assert run_test_command(tmp_path, "python -m pytest -q").passed


def test_timeout_is_a_failure(tmp_path: Path) -> None:
    (tmp_path / "test_slow.py").write_text("import time\n\ndef test_slow():\n    time.sleep(30)\n")
    result = run_test_command(tmp_path, "python -m pytest -q", timeout_s=3)
    assert not result.passed and "timed out" in result.output_tail


NETWORK_PROBE = """import os, socket

def test_probe():
    port = int(open("port.txt").read())
    try:
        socket.create_connection(("127.0.0.1", port), timeout=3).close()
        reached = True
    except OSError:
        reached = False
    open("reached.txt", "w").write(str(reached))
    try:
        open({outside!r}, "w").write("escaped")
    except OSError:
        pass
"""


def _probe(tmp_path: Path) -> tuple[TestResult, bool, Path]:
    """Run a test that dials a port open on this machine and writes outside its workspace."""
    workspace, outside = tmp_path / "ws", tmp_path / "outside.txt"
    workspace.mkdir()
    with socket.create_server(("127.0.0.1", 0)) as server:
        (workspace / "port.txt").write_text(str(server.getsockname()[1]))
        (workspace / "test_probe.py").write_text(NETWORK_PROBE.format(outside=str(outside)))
        result = run_test_command(workspace, "python -m pytest -q")
    reached = (workspace / "reached.txt").read_text() == "True"
    return result, reached, outside


def test_with_bubblewrap_a_test_run_has_no_network_and_writes_only_its_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SANDBOX_ENV, "auto")
    if _bwrap_works() is None:
        # Without bubblewrap the run still happens, and says how little it was isolated.
        assert os.environ.get("MERGEMETER_REQUIRE_BWRAP") != "1", "bubblewrap must work here"
        result, reached, _ = _probe(tmp_path)
        assert result.passed and result.sandbox == "env+limits" and reached
        return
    result, reached, outside = _probe(tmp_path)
    assert result.passed, result.output_tail
    assert result.sandbox.startswith("bwrap")
    assert not reached
    assert not outside.exists()


def test_without_the_sandbox_the_same_run_reaches_the_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SANDBOX_ENV, "none")
    result, reached, outside = _probe(tmp_path)
    assert result.passed and result.sandbox == "env+limits"
    assert reached and outside.read_text() == "escaped"


def test_asking_for_bubblewrap_where_it_cannot_run_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tasks.workspace._bwrap_works", lambda: None)
    monkeypatch.setenv(SANDBOX_ENV, "bwrap")
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        run_test_command(tmp_path, "python -m pytest -q")
    monkeypatch.setenv(SANDBOX_ENV, "jail")
    with pytest.raises(SandboxUnavailable, match="auto, bwrap or none"):
        run_test_command(tmp_path, "python -m pytest -q")


def test_a_python_environment_under_tmp_is_visible_inside_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh clone's .venv may live under /tmp, which the sandbox replaces with an empty one."""
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)],
        check=True,
    )
    monkeypatch.setattr(sys, "executable", str(venv / "bin" / "python"))
    monkeypatch.setattr(sys, "prefix", str(venv))
    monkeypatch.setattr(sys, "exec_prefix", str(venv))
    workspace = tmp_path / "ws"
    workspace.mkdir()
    result = run_test_command(workspace, "python -c \"import sys; print('ran', sys.prefix)\"")
    assert result.passed, result.output_tail
    assert result.output_tail == f"ran {venv}"
