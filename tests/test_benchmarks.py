"""The economics benchmark runs as its README command says and reports what it measured."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_economics_benchmark_runs_and_finds_no_mismatch_or_overshoot() -> None:
    command = [sys.executable, "-m", "benchmarks", "economics", "--calls", "40", "--runs", "20"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "accounting: 40 replayed calls" in done.stdout
    assert "0 mismatches against litellm completion_cost" in done.stdout
    assert "20 fuzzed runs" in done.stdout
    assert "largest overshoot over any cap: 0" in done.stdout
