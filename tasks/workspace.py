"""Workspaces: fresh checkouts that a step builds from its inputs alone, and the sandboxed test run.

No step relies on files an earlier step (or a dead process) left behind: each one clones the base
it was given and re-applies the edits it was handed.
"""

from __future__ import annotations

import os
import re
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from blocks import git
from blocks.forge import Forge
from tasks.edits import EditBlock, apply_edit_blocks
from tasks.models import TestResult

TEST_TIMEOUT_S = 300
_MEMORY_LIMIT = 4 * 1024**3


@contextmanager
def checkout(
    forge: Forge, repo: str, ref: str, edits: list[EditBlock] | None = None
) -> Iterator[Path]:
    """A fresh clone of ``repo`` at ``ref`` with ``edits`` applied; removed afterwards."""
    workspace = forge.workspace(repo, ref)
    try:
        if edits:
            apply_edit_blocks(workspace, edits)
        yield workspace
    finally:
        shutil.rmtree(workspace.parent, ignore_errors=True)


def diff_stats(workspace: Path) -> tuple[str, int, int]:
    """The uncommitted diff of ``workspace`` with lines added and removed."""
    git.git(workspace, "add", "--all")
    diff = git.out(workspace, "diff", "--cached")
    added = removed = 0
    for line in git.out(workspace, "diff", "--cached", "--numstat").splitlines():
        plus, minus, _ = line.split("\t", 2)
        added += int(plus) if plus.isdigit() else 0
        removed += int(minus) if minus.isdigit() else 0
    return diff, added, removed


def repository_map(workspace: Path) -> str:
    """Tracked files with their line counts: what a planner needs to choose files."""
    rows = []
    for name in git.out(workspace, "ls-files").splitlines():
        path = workspace / name
        try:
            count = len(path.read_text(encoding="utf-8").splitlines())
        except (UnicodeDecodeError, OSError):
            count = 0
        rows.append(f"{name} ({count} lines)")
    return "\n".join(rows)


def read_files(workspace: Path, names: list[str]) -> str:
    """The named files' contents, fenced, for a prompt (missing files are said to be new)."""
    parts = []
    for name in names:
        path = workspace / name
        if path.is_file():
            parts.append(f"{name}\n```\n{path.read_text(encoding='utf-8')}```")
        else:
            parts.append(f"{name}\n(new file)")
    return "\n\n".join(parts)


def _sandbox_env(home: str) -> dict[str, str]:
    """Only what a test run needs: no forge tokens, no model keys, no user configuration."""
    interpreter_dir = os.path.dirname(sys.executable)
    return {
        "PATH": f"{interpreter_dir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
    }


SANDBOX_ENV = "MERGEMETER_SANDBOX"
"""``auto`` (default): bubblewrap when it works here, else environment and limits only;
``bwrap``: bubblewrap or refuse to run; ``none``: environment and limits only."""


class SandboxUnavailable(RuntimeError):
    """``MERGEMETER_SANDBOX=bwrap`` was asked for and bubblewrap cannot run here."""


@cache
def _bwrap_works() -> str | None:
    """The bubblewrap binary, if it is installed and can make an empty namespace here."""
    binary = shutil.which("bwrap")
    if binary is None:
        return None
    probe = [binary, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--", "/bin/true"]
    try:
        ok = subprocess.run(probe, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return binary if ok else None


def _isolation(workspace: Path, home: str) -> tuple[list[str], str]:
    """The command prefix that isolates a test run, and its name for the test result.

    With bubblewrap: no network (every namespace unshared), the whole file system read-only but
    the workspace and the run's own home, a fresh /tmp, /dev and /proc; the process dies with its
    parent. Without it: the scrubbed environment, resource limits and timeout still apply.
    """
    wanted = os.environ.get(SANDBOX_ENV, "auto").strip().lower() or "auto"
    if wanted not in {"auto", "bwrap", "none"}:
        raise SandboxUnavailable(f"{SANDBOX_ENV}={wanted!r}: use auto, bwrap or none")
    binary = None if wanted == "none" else _bwrap_works()
    if binary is None:
        if wanted == "bwrap":
            raise SandboxUnavailable(
                f"{SANDBOX_ENV}=bwrap but bubblewrap is missing or cannot create namespaces here "
                "(apt-get install bubblewrap)"
            )
        return [], "env+limits"
    root = str(workspace.resolve())
    prefix = [binary, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/"]
    prefix += ["--tmpfs", "/tmp", "--dev", "/dev", "--proc", "/proc"]  # /tmp before binds in it
    for path in _interpreter_paths():  # a virtual environment may itself live under /tmp
        prefix += ["--ro-bind", path, path]
    prefix += ["--bind", root, root, "--bind", home, home, "--chdir", root, "--"]
    return prefix, "bwrap: no network, read-only system"


def _interpreter_paths() -> list[str]:
    """The folders the test run's Python comes from: its environment and its base install."""
    found = [sys.prefix, sys.exec_prefix, sys.base_prefix, os.path.dirname(sys.executable)]
    found.append(os.path.dirname(os.path.realpath(sys.executable)))
    return [p for p in dict.fromkeys(os.path.realpath(f) for f in found) if os.path.isdir(p)]


def _limit_resources() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (_MEMORY_LIMIT, _MEMORY_LIMIT))
    resource.setrlimit(resource.RLIMIT_CPU, (TEST_TIMEOUT_S, TEST_TIMEOUT_S))


_COUNT = re.compile(r"(\d+) (passed|failed|error|errors)\b")


def run_test_command(workspace: Path, command: str, timeout_s: int = TEST_TIMEOUT_S) -> TestResult:
    """Run ``command`` in ``workspace`` with a scrubbed environment, limits and a timeout, and no
    network where bubblewrap works (`MERGEMETER_SANDBOX`)."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mm-test-home-") as home:
        prefix, sandbox = _isolation(workspace, home)
        try:
            proc = subprocess.run(
                [*prefix, *shlex.split(command)],
                cwd=workspace,
                env=_sandbox_env(home),
                capture_output=True,
                text=True,
                timeout=timeout_s,
                preexec_fn=_limit_resources,
            )
            output, code = proc.stdout + proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as exc:
            output = f"{exc.stdout or ''}{exc.stderr or ''}\n[timed out after {timeout_s}s]"
            code = -1
        except FileNotFoundError as exc:
            output, code = f"cannot run {command!r}: {exc}", 127
    counts = {"passed": 0, "failed": 0}
    for number, word in _COUNT.findall(output):
        counts["passed" if word == "passed" else "failed"] += int(number)
    return TestResult(
        passed=code == 0,
        exit_code=code,
        passed_count=counts["passed"],
        failed_count=counts["failed"],
        duration_s=round(time.monotonic() - started, 3),
        output_tail="\n".join(output.strip().splitlines()[-30:]),
        sandbox=sandbox,
    )
