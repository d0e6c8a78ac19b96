"""`python -m benchmarks NAME [options]` — run one benchmark; `python -m benchmarks` lists them."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "economics": "benchmarks.economics",
    "routing": "benchmarks.routing",
    "resume": "benchmarks.resume",
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BENCHMARKS:
        print(f"usage: python -m benchmarks {{{','.join(BENCHMARKS)}}} [options]")
        return 2
    module = importlib.import_module(BENCHMARKS[argv[0]])
    return int(module.main(argv[1:]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
