"""Path globs for templates' ``protected_paths`` and ``allowed_paths``.

``glob_problem`` says why a pattern is unusable (or None); ``match_glob`` matches a
repository-relative path against one. ``*``, ``?`` and ``[...]`` stay within a path segment,
``**`` as a whole segment spans directories.
"""

from __future__ import annotations

import re
from functools import lru_cache


def glob_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a usable path glob, or None if it is.

    Globs are relative to the repository root and use '/': ``*`` and ``?`` stay within one
    path segment, ``[...]`` is a character class (``[!...]`` negated), and ``**`` as a whole
    segment spans any number of directories (``docs/**``, ``**/*.md``; ``**/`` may match none).
    """
    if not pattern.strip():
        return "it is empty"
    if pattern.startswith(("/", "~")) or re.match(r"^[A-Za-z]:", pattern):
        return "it must be relative to the repository root"
    if "\\" in pattern:
        return "use '/' to separate directories"
    segments = pattern.split("/")
    if ".." in segments:
        return "it must not contain '..'"
    if pattern.endswith("/"):
        return f"it ends with '/'; write '{pattern}**' for everything under that directory"
    if "" in segments:
        return "it has an empty path segment ('//')"
    for segment in segments:
        if "**" in segment and segment != "**":
            return "'**' must be a whole path segment, as in 'docs/**' or '**/*.md'"
    try:
        _glob_regex(pattern)
    except ValueError as exc:
        return str(exc)
    return None


def match_glob(pattern: str, path: str) -> bool:
    """Whether repository-relative ``path`` matches glob ``pattern`` (see ``glob_problem``)."""
    path = path.removeprefix("./")
    return _glob_regex(pattern).fullmatch(path) is not None


@lru_cache(maxsize=512)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    segments = pattern.split("/")
    parts: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            parts.append(".*" if last else "(?:[^/]+/)*")
        else:
            parts.append(_segment_regex(segment) + ("" if last else "/"))
    try:
        return re.compile("".join(parts))
    except re.error as exc:
        raise ValueError(f"bad character class ({exc.msg})") from exc


def _segment_regex(segment: str) -> str:
    out: list[str] = []
    i, n = 0, len(segment)
    while i < n:
        char = segment[i]
        i += 1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = _class_end(segment, i)
            body = segment[i:end].replace("\\", "\\\\")
            if body.startswith("!"):
                body = "^" + body[1:]
            elif body.startswith("^"):
                body = "\\" + body
            out.append(f"[{body}]")
            i = end + 1
        else:
            out.append(re.escape(char))
    return "".join(out)


def _class_end(segment: str, start: int) -> int:
    """Index of the ']' closing a class whose body starts at ``start`` (fnmatch's rules)."""
    j = start
    if j < len(segment) and segment[j] == "!":
        j += 1
    if j < len(segment) and segment[j] == "]":
        j += 1
    end = segment.find("]", j)
    if end < 0:
        raise ValueError("unbalanced '[' (write '[[]' for a literal '[')")
    return end
