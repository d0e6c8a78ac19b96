"""What can be wrong with a pipeline template file, and on which line.

``Problem`` is one finding (field path, line, message) and ``TemplateError`` carries all of a
file's. ``cross_field_problems`` checks how fields relate (step ids, the merge step, the fix
loop, the test command) on the raw data, so it runs even when some fields are malformed. The
YAML helpers parse a file keeping its nodes, find the line a field path is on and report
duplicate keys. Nothing here needs the schema in ``flows/template.py``, which builds on it.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

Loc = tuple[str | int, ...]

MERGE_KIND = "merge"
# Kinds that run the template's test command, so it must not be empty when one is present.
TEST_COMMAND_KINDS = frozenset({"test", "reproduce"})
# The default of ``Template.test_command``, which the cross-field check assumes when it is unset.
DEFAULT_TEST_COMMAND = "python -m pytest -q"


# --- problems ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a template file, where it is and what is wrong."""

    location: str  # field path such as "steps[2].kind" or "fix_loop.repeat[0]"; "" for the file
    line: int  # 1-based line in the YAML file
    message: str

    def format(self, path: str | Path) -> str:
        """``file:line: location: message``, as compilers and editors expect."""
        where = f"{self.location}: " if self.location else ""
        return f"{path}:{self.line}: {where}{self.message}"


class TemplateError(ValueError):
    """A template file has problems; ``problems`` lists all of them."""

    def __init__(self, problems: list[Problem], path: str | Path = "<template>") -> None:
        self.problems = problems
        self.path = Path(path)
        super().__init__("\n".join(problem.format(path) for problem in problems))


def format_location(loc: Loc) -> str:
    """``("steps", 2, "kind")`` as ``steps[2].kind``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


# --- cross-field checks (on raw data, so they run even when some fields are malformed) ---------


def cross_field_problems(data: Any) -> list[tuple[Loc, str]]:
    """Problems between fields: step ids, the merge step, the fix loop, the test command."""
    if not isinstance(data, dict):
        return []
    steps = data.get("steps")
    steps = [s if isinstance(s, dict) else {} for s in steps] if isinstance(steps, list) else []
    return [
        *_duplicate_step_ids(steps),
        *_merge_step_problems(steps),
        *_fix_loop_problems(data.get("fix_loop"), steps),
        *_test_command_problems(data, steps),
    ]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _duplicate_step_ids(steps: list[dict[str, Any]]) -> list[tuple[Loc, str]]:
    first: dict[str, int] = {}
    problems: list[tuple[Loc, str]] = []
    for index, step in enumerate(steps):
        step_id = _text(step.get("id"))
        if step_id is None:
            continue
        if step_id in first:
            problems.append(
                (
                    ("steps", index, "id"),
                    f"step id {step_id!r} is already used by steps[{first[step_id]}]",
                )
            )
        else:
            first[step_id] = index
    return problems


def _merge_step_problems(steps: list[dict[str, Any]]) -> list[tuple[Loc, str]]:
    if not steps:
        return []
    merges = [i for i, step in enumerate(steps) if step.get("kind") == MERGE_KIND]
    if not merges:
        return [
            (("steps",), f"no step has kind {MERGE_KIND!r}; the last step must merge the change")
        ]
    problems: list[tuple[Loc, str]] = [
        (("steps", i, "kind"), f"only one merge step is allowed; steps[{merges[0]}] merges already")
        for i in merges[1:]
    ]
    if merges[0] != len(steps) - 1 and len(merges) == 1:
        problems.append((("steps", merges[0], "kind"), "the merge step must be the last step"))
    return problems


def _fix_loop_problems(fix_loop: Any, steps: list[dict[str, Any]]) -> list[tuple[Loc, str]]:
    if not isinstance(fix_loop, dict) or not isinstance(fix_loop.get("repeat"), list):
        return []
    ids = [step_id for step in steps if (step_id := _text(step.get("id"))) is not None]
    merge_ids = {_text(s.get("id")) for s in steps if s.get("kind") == MERGE_KIND}
    problems: list[tuple[Loc, str]] = []
    seen: list[str] = []
    for index, name in enumerate(fix_loop["repeat"]):
        loc: Loc = ("fix_loop", "repeat", index)
        if not isinstance(name, str):
            continue  # a type error, which the schema reports
        if name not in ids:
            problems.append(
                (
                    loc,
                    f"{name!r} is not a step id{_did_you_mean(name, ids)}; step ids: {', '.join(ids)}",
                )
            )
        elif name in merge_ids:
            problems.append((loc, f"{name!r} is the merge step, which runs once and cannot repeat"))
        elif name in seen:
            problems.append((loc, f"{name!r} is listed twice"))
        else:
            seen.append(name)
    if seen != sorted(seen, key=ids.index):
        problems.append(
            (
                ("fix_loop", "repeat"),
                f"list the steps in the order they run: {', '.join(sorted(seen, key=ids.index))}",
            )
        )
    return problems


def _test_command_problems(
    data: dict[str, Any], steps: list[dict[str, Any]]
) -> list[tuple[Loc, str]]:
    command = data.get("test_command", DEFAULT_TEST_COMMAND)
    if not isinstance(command, str) or command.strip():
        return []
    users = [_text(s.get("id")) or "?" for s in steps if s.get("kind") in TEST_COMMAND_KINDS]
    if not users:
        return []
    return [
        (
            ("test_command",),
            f"is empty, but step(s) {', '.join(users)} run the tests; set the command or remove those steps",
        )
    ]


def _did_you_mean(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- the YAML: parsing it, and where a field is ------------------------------------------------


def _parse(text: str) -> tuple[Node | None, Any, list[Problem]]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        return None, None, [_syntax_problem(exc)]
    except yaml.YAMLError as exc:
        return None, None, [Problem("", 1, f"invalid YAML: {exc}")]
    finally:
        loader.dispose()
    return node, data, []


def _syntax_problem(exc: yaml.MarkedYAMLError) -> Problem:
    mark, context = exc.problem_mark or exc.context_mark, exc.context_mark
    line = mark.line + 1 if mark else 1
    detail = str(exc.problem)
    if exc.context:
        started = f" on line {context.line + 1}" if context and context.line + 1 != line else ""
        detail = f"{exc.context}{started}, {detail}"
    return Problem("", line, f"invalid YAML: {detail}")


def _line_of(root: Node, loc: Loc) -> int:
    """Line of the deepest node along ``loc`` (a missing key points at its parent)."""
    node, line = root, root.start_mark.line + 1
    for part in loc:
        found = _child(node, part)
        if found is None:
            break
        line, node = found
    return line


def _child(node: Node, part: str | int) -> tuple[int, Node] | None:
    if isinstance(node, MappingNode) and isinstance(part, str):
        for key, value in reversed(node.value):  # the last duplicate is the one YAML keeps
            if isinstance(key, ScalarNode) and key.value == part:
                return key.start_mark.line + 1, value
    if isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        item = node.value[part]
        return item.start_mark.line + 1, item
    return None


def _duplicate_keys(node: Node, loc: Loc = ()) -> list[Problem]:
    problems: list[Problem] = []
    if isinstance(node, MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, ScalarNode) else None
            line = key.start_mark.line + 1
            if name in first:
                problems.append(
                    Problem(
                        format_location((*loc, name)),
                        line,
                        f"{name!r} appears twice (first on line {first[name]}); YAML keeps only the last",
                    )
                )
            elif name is not None:
                first[name] = line
            problems += _duplicate_keys(value, (*loc, name) if name is not None else loc)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            problems += _duplicate_keys(item, (*loc, index))
    return problems
