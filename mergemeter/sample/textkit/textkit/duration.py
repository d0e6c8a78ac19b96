"""Human-friendly durations: '90s', '5m', '2h', '1d'."""

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SIMPLE = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")


def parse_duration(text: str) -> int:
    """Return the number of seconds in ``text``.

    >>> parse_duration("5m")
    300
    """
    match = _SIMPLE.match(text.lower())
    if not match:
        raise ValueError(f"not a duration: {text!r}")
    amount, unit = match.groups()
    return int(amount) * _UNITS[unit]


def format_duration(seconds: int) -> str:
    """Format ``seconds`` as the largest units that divide it, e.g. 3660 -> '1h1m'."""
    if seconds < 0:
        raise ValueError("seconds must not be negative")
    if seconds == 0:
        return "0s"
    parts = []
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
