from pathlib import Path

from tasks.workspace import run_test_command

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
