"""Thin, explicit git commands shared by the local forge and the workspace tasks.

Every command carries its own identity so it works in an empty home folder, and never asks
a terminal for anything.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

IDENTITY = ["-c", "user.name=mergemeter", "-c", "user.email=mergemeter@localhost"]


class GitError(RuntimeError):
    """A git command failed; the message holds its output."""


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``git args`` in ``cwd`` and return the finished process."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}
    proc = subprocess.run(
        ["git", *IDENTITY, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and proc.returncode != 0:
        raise GitError(f"git {' '.join(args)} failed in {cwd}:\n{proc.stdout}{proc.stderr}")
    return proc


def out(cwd: Path, *args: str) -> str:
    """Run git and return its stripped standard output."""
    return git(cwd, *args).stdout.strip()


def clone(source: Path, dest: Path, ref: str | None = None) -> Path:
    """Clone ``source`` into ``dest`` and check out ``ref`` (a branch or a sha) detached."""
    git(dest.parent, "clone", "--quiet", str(source), str(dest))
    if ref:
        git(dest, "checkout", "--quiet", "--detach", ref)
    return dest


def commit_all(cwd: Path, message: str) -> str:
    """Stage everything and commit; return the new HEAD sha."""
    git(cwd, "add", "--all")
    git(cwd, "commit", "--quiet", "--allow-empty", "-m", message)
    return out(cwd, "rev-parse", "HEAD")
