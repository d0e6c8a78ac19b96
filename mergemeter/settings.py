"""Where mergemeter keeps its files and which environment makes it offline.

Nothing here runs at import time; callers ask for paths when they need them.
"""

from __future__ import annotations

import os
from pathlib import Path

OFFLINE_ENVIRONMENT = {
    # litellm downloads its price map at import unless told to use the bundled copy.
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    # Prefect's server reports usage to a remote endpoint unless disabled.
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


def apply_offline_defaults() -> None:
    """Set the offline defaults for this process, keeping any value the user set."""
    for name, value in OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)


def data_dir() -> Path:
    """The folder for the ledger, the local forge and the demo (``MERGEMETER_HOME`` overrides)."""
    explicit = os.environ.get("MERGEMETER_HOME")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mergemeter"
