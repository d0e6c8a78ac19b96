"""Fault injection for resilience tests and benchmarks.

When ``MERGEMETER_FAULTS`` names a JSON file such as ``{"review": "kill"}``, the step named there
fails once at its start — the boundary after the previous step completed: ``fail`` raises
`InjectedFault`, ``kill`` ends the process with SIGKILL (as an out-of-memory killer or a lost
machine would). Each fault is removed from the file before it fires, so a retry runs clean.
Unset (the default), this does nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal

FAULTS_ENV = "MERGEMETER_FAULTS"


class InjectedFault(RuntimeError):
    """A failure injected on purpose at the start of a step."""


def inject(step: str) -> None:
    """Fire the fault planned for ``step``, if any (once)."""
    path = os.environ.get(FAULTS_ENV)
    if not path or not os.path.exists(path):
        return
    with open(path, "r+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        faults = json.loads(handle.read() or "{}")
        action = faults.pop(step, None)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(faults))
        handle.flush()
        os.fsync(handle.fileno())
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if action == "fail":
        raise InjectedFault(f"fault injected at the start of {step}")
