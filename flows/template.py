"""Pipeline templates: the declarative definition of how one change is made.

A template (YAML under ``flows/templates/``) names its steps in order — each a registered task
kind (``tasks/registry.py``) played by a model role or by no model — the fix loop (which steps
repeat after a failed test or a rejected review, and how often), the merge policy, the paths a
change may or may not touch, and a budget. ``resolve_issue`` interprets it.

``validate_file`` reports every problem of a file at once, each with the field path and the
line it is on; ``load_template`` returns a ``Template`` or raises ``TemplateError`` listing them.
The ``cmd_*`` functions are the ``mergemeter template`` commands.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tasks import registry

Loc = tuple[str | int, ...]

SLUG = re.compile(r"^[a-z][a-z0-9_-]*$")
MERGE_KIND = "merge"
# Kinds that run the template's test command, so it must not be empty when one is present.
TEST_COMMAND_KINDS = frozenset({"test", "reproduce"})
# Passed as validation context by validate_file, which runs the cross-field checks itself so
# that they are reported together with the field errors rather than only after them.
_DEFER_CROSS_CHECKS = "defer_cross_checks"


# --- field types -------------------------------------------------------------------------------


def _slug(value: str) -> str:
    if not SLUG.match(value):
        raise PydanticCustomError(
            "slug",
            "{value!r} must be lower-case letters, digits, '-' or '_', starting with a letter",
            {"value": value},
        )
    return value


def _known_kind(value: str) -> str:
    if not registry.is_kind(value):
        raise PydanticCustomError(
            "unknown_task_kind", str(registry.UnknownTaskKind(value, registry.kind_names()))
        )
    return value


def _glob(value: str) -> str:
    problem = glob_problem(value)
    if problem:
        raise PydanticCustomError(
            "glob", "invalid glob '{glob}': {problem}", {"glob": value, "problem": problem}
        )
    return value


Slug = Annotated[str, AfterValidator(_slug)]
Kind = Annotated[str, AfterValidator(_known_kind)]
Glob = Annotated[str, AfterValidator(_glob)]
Delay = Annotated[float, Field(ge=0)]


# --- globs -------------------------------------------------------------------------------------


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


# --- the schema --------------------------------------------------------------------------------


class Step(BaseModel):
    """One step of the pipeline: a registered task kind, played by a model role or by none."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: Slug = Field(
        description="Name of the step, unique in the template (e.g. 'implement'); the fix loop "
        "and the task run names refer to it."
    )
    kind: Kind = Field(
        description="Registered task kind that does the work: plan, implement, test, review, "
        "reproduce, merge, or a kind registered in tasks/registry.py."
    )
    role: Slug | None = Field(
        default=None,
        description="Model role the step asks the route for (planner, coder, reviewer, or any "
        "role the route defines); null for steps that call no model, such as test and merge.",
    )
    retries: int | None = Field(
        default=None,
        ge=0,
        description="How often Prefect retries the step when it fails with an error its task "
        "deems retryable (a provider outage, a base that moved); null keeps the task's own.",
    )
    retry_delay_seconds: list[Delay] | None = Field(
        default=None,
        max_length=50,
        description="Seconds to wait before each retry, e.g. [2, 5, 15]; null keeps the task's "
        "own.",
    )
    cache: Literal["inputs", "none"] = Field(
        default="inputs",
        description="'inputs': a completed step is reused for the same inputs and task code, so "
        "a retried run costs no new tokens; 'none': it always runs again.",
    )
    timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        description="Fail the step if one try runs longer than this; null for no limit.",
    )

    def task_options(self) -> dict[str, Any]:
        """Options for ``task.with_options(...)``: only what this step sets, plus its cache."""
        from prefect.cache_policies import NO_CACHE

        from tasks.policy import STEP_CACHE

        options: dict[str, Any] = (
            {"cache_policy": STEP_CACHE, "persist_result": True}
            if self.cache == "inputs"
            else {"cache_policy": NO_CACHE}
        )
        if self.retries is not None:
            options["retries"] = self.retries
        if self.retry_delay_seconds is not None:
            options["retry_delay_seconds"] = self.retry_delay_seconds
        if self.timeout_seconds is not None:
            options["timeout_seconds"] = self.timeout_seconds
        return options


class FixLoop(BaseModel):
    """Which steps run again after a failed test or a rejected review, and how often."""

    model_config = ConfigDict(extra="forbid", strict=True)

    repeat: list[str] = Field(
        min_length=1,
        description="Ids of the steps that repeat, in the order they run, e.g. [implement, test, "
        "review]; the failure becomes the next attempt's feedback.",
    )
    max_attempts: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Attempts in all, the first included; after the last failed one the change "
        "is rejected and handed to a person.",
    )
    on_failure: str = Field(
        default="needs-human",
        min_length=1,
        description="Label put on the issue when the change is not accepted.",
    )


class Template(BaseModel):
    """A pipeline: its steps in order, the fix loop, the merge policy, paths and budget."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: Slug = Field(
        description="Template name, the same as its file name without '.yaml'; recorded on "
        "every change, so reports group by it."
    )
    description: str = Field(min_length=1, description="What kind of work the template is for.")
    version: int = Field(
        default=1,
        ge=1,
        description="Bump it when the pipeline changes in a way reports should show.",
    )
    steps: list[Step] = Field(
        min_length=1, description="The steps in the order they run; the last one is the merge."
    )
    fix_loop: FixLoop = Field(description="Which steps repeat after a failure, and how often.")
    test_command: str = Field(
        default="python -m pytest -q",
        description="Command that runs the repository's tests in the sandbox; may be empty only "
        "if no step runs tests.",
    )
    protected_paths: list[Glob] = Field(
        default_factory=list,
        description="Globs of paths an auto-merged change never touches (e.g. '.github/**'); a "
        "change that does needs a person's approval.",
    )
    allowed_paths: list[Glob] | None = Field(
        default=None,
        min_length=1,
        description="When set, globs of the only paths a change may touch (e.g. ['docs/**', "
        "'**/*.md']); null allows any path that is not protected.",
    )
    merge_policy: Literal["auto", "human-approval", "draft"] = Field(
        description="'auto': merge when tests pass on the current base and the review approves; "
        "'human-approval': wait for a person in the Prefect UI; 'draft': open a draft pull "
        "request and stop."
    )
    budget_usd: float | None = Field(
        default=None, gt=0, description="USD cap for one change, all attempts; null for none."
    )
    budget_tokens: int | None = Field(
        default=None, gt=0, description="Token cap for one change, all attempts; null for none."
    )
    max_units: int = Field(
        default=1,
        ge=1,
        le=10,
        description="Most units an issue may be decomposed into, each its own change; 1 "
        "resolves the issue as one change.",
    )

    @model_validator(mode="after")
    def _check_consistency(self, info: ValidationInfo) -> Template:
        if info.context and info.context.get(_DEFER_CROSS_CHECKS):
            return self
        problems = cross_field_problems(self.model_dump())
        if problems:
            raise ValueError("; ".join(f"{format_location(loc)}: {msg}" for loc, msg in problems))
        return self

    def step(self, step_id: str) -> Step:
        """The step called ``step_id``."""
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(f"template {self.name!r} has no step {step_id!r}")

    @property
    def repeated_steps(self) -> list[Step]:
        """The steps of the fix loop, in the order they run."""
        return [self.step(step_id) for step_id in self.fix_loop.repeat]

    @property
    def merge_step(self) -> Step:
        """The merge step (always the last)."""
        return self.steps[-1]

    def protected(self, paths: Iterable[str]) -> list[str]:
        """Those of ``paths`` that match a protected glob."""
        return [p for p in paths if any(match_glob(g, p) for g in self.protected_paths)]

    def disallowed(self, paths: Iterable[str]) -> list[str]:
        """Those of ``paths`` outside ``allowed_paths`` (none when every path is allowed)."""
        if self.allowed_paths is None:
            return []
        return [p for p in paths if not any(match_glob(g, p) for g in self.allowed_paths)]

    def outline(self) -> str:
        """The pipeline in one line, e.g. ``plan → implement ⇄ test ⇄ review → merge``."""
        text = ""
        for index, step in enumerate(self.steps):
            if index:
                looped = {step.id, self.steps[index - 1].id} <= set(self.fix_loop.repeat)
                text += " ⇄ " if looped else " → "
            text += step.id
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
    command = data.get("test_command", Template.model_fields["test_command"].default)
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


# --- problems and where they are -------------------------------------------------------------


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


class TemplateNotFound(LookupError):
    """No template file by that name or path."""


def format_location(loc: Loc) -> str:
    """``("steps", 2, "kind")`` as ``steps[2].kind``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


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


def _pydantic_message(error: Any) -> str:
    kind, loc = error["type"], error["loc"]
    if kind == "missing":
        return f"missing required field {loc[-1]!r}" if loc else "missing required fields"
    if kind == "extra_forbidden":
        valid = sorted(_model_at(loc[:-1]).model_fields)
        name = str(loc[-1])
        return (
            f"unknown field {name!r}{_did_you_mean(name, valid)}; valid fields: {', '.join(valid)}"
        )
    message = str(error["msg"])
    if kind in {"slug", "unknown_task_kind", "glob"}:
        return message
    message = message.removeprefix("Input ").removeprefix("Value error, ")
    value = error.get("input")
    if isinstance(value, str | int | float | bool) or value is None:
        message += f" (got {value!r})"
    return message


def _model_at(loc: Loc) -> type[BaseModel]:
    """The model whose fields live at ``loc`` (for listing the valid field names)."""
    named = [part for part in loc if isinstance(part, str)]
    return {(): Template, ("steps",): Step, ("fix_loop",): FixLoop}.get(tuple(named), Template)


# --- files -------------------------------------------------------------------------------------


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


def check_text(text: str, file_stem: str | None = None) -> tuple[Template | None, list[Problem]]:
    """Validate template YAML ``text``: the template if it is valid, and every problem found.

    With ``file_stem``, the template's name must equal it, so it can be found by name.
    """
    node, data, problems = _parse(text)
    if problems:
        return None, problems
    if node is None:
        return None, [
            Problem("", 1, "the file is empty; start from `mergemeter template new NAME`")
        ]
    if not isinstance(data, dict):
        return None, [
            Problem(
                "",
                node.start_mark.line + 1,
                "a template is a mapping of fields (name:, steps:, ...)",
            )
        ]
    problems = _duplicate_keys(node)
    template: Template | None = None
    try:
        template = Template.model_validate(data, context={_DEFER_CROSS_CHECKS: True})
    except ValidationError as exc:
        problems += [
            Problem(format_location(e["loc"]), _line_of(node, e["loc"]), _pydantic_message(e))
            for e in exc.errors()
        ]
    for loc, message in cross_field_problems(data):
        problems.append(Problem(format_location(loc), _line_of(node, loc), message))
    name = data.get("name")
    if file_stem is not None and isinstance(name, str) and name != file_stem:
        problems.append(
            Problem(
                "name",
                _line_of(node, ("name",)),
                f"{name!r} differs from the file name {file_stem!r}; make them the same so the "
                "template can be found by name and reports show the right one",
            )
        )
    problems.sort(key=lambda p: p.line)
    return (template if not problems else None), problems


def validate_file(path: str | Path) -> list[Problem]:
    """Every problem of the template file at ``path`` (an empty list when it is valid)."""
    return _check_file(Path(path))[1]


def _check_file(path: Path) -> tuple[Template | None, list[Problem]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem("", 1, f"cannot read the file: {exc}")]
    return check_text(text, file_stem=path.stem)


def template_dir() -> Path:
    """The folder of the shipped templates."""
    return Path(__file__).parent / "templates"


def find_template(name_or_path: str | Path) -> Path:
    """The file of a shipped template by name (``"bugfix"``), or a path to a template file."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or text.endswith((".yaml", ".yml")):
        path = Path(name_or_path)
        if not path.is_file():
            raise TemplateNotFound(f"no template file {path}")
        return path
    path = template_dir() / f"{text}.yaml"
    if not path.is_file():
        names = [info.name for info in list_templates()]
        raise TemplateNotFound(
            f"no template named {text!r}{_did_you_mean(text, names)}; "
            f"shipped templates: {', '.join(names)} (or give the path of a .yaml file)"
        )
    return path


def load_template(name_or_path: str | Path) -> Template:
    """The template by name or path; ``TemplateError`` lists every problem if it is invalid."""
    path = find_template(name_or_path)
    template, problems = _check_file(path)
    if template is None:
        raise TemplateError(problems, path)
    return template


def content_hash(path: str | Path) -> str:
    """SHA-256 of the template file's bytes (hex), recorded on each change it runs."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class TemplateInfo(NamedTuple):
    """A shipped template as listed: its name, description and file."""

    name: str
    description: str
    path: Path


def list_templates() -> list[TemplateInfo]:
    """The shipped templates, by name; a file that does not parse is listed with a note."""
    infos = []
    for path in sorted(template_dir().glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            description = str(data.get("description", "")) if isinstance(data, dict) else ""
        except (OSError, yaml.YAMLError):
            description = "(does not parse; run `mergemeter template validate` on it)"
        infos.append(TemplateInfo(path.stem, description, path))
    return infos


# --- scaffolding -------------------------------------------------------------------------------


def scaffold(name: str, dest_dir: str | Path) -> Path:
    """Write ``dest_dir/name.yaml``: the default pipeline under a new name, every field explained."""
    if not SLUG.match(name):
        raise ValueError(
            f"template name {name!r} must be lower-case letters, digits, '-' or '_', starting with a letter"
        )
    path = Path(dest_dir) / f"{name}.yaml"
    if path.exists():
        raise FileExistsError(f"{path} already exists")
    base = load_template("default")
    template = base.model_copy(
        update={
            "name": name,
            "version": 1,
            "description": f"{name}: describe the work this pipeline is for.",
        }
    )
    text = render_yaml(template)
    if check_text(text, file_stem=name)[1]:  # a bug here, never the user's doing
        raise TemplateError(check_text(text, file_stem=name)[1], path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def render_yaml(template: Template) -> str:
    """``template`` as YAML with each field's description as a comment above it."""
    data = template.model_dump(mode="json")
    data["steps"] = [step.model_dump(mode="json", exclude_defaults=True) for step in template.steps]
    lines = [
        f"# mergemeter pipeline template {template.name!r}: {template.outline()}",
        f"# Check it with: mergemeter template validate {template.name}.yaml",
        "",
    ]
    for field_name, field in Template.model_fields.items():
        lines += _comment(field.description or "")
        if field_name == "steps":
            lines += _comment_fields(Step, extra=f"kinds: {', '.join(registry.kind_names())}")
        elif field_name == "fix_loop":
            lines += _comment_fields(FixLoop)
        dumped = yaml.dump(
            {field_name: data[field_name]}, Dumper=_Dumper, sort_keys=False, width=100
        )
        lines += [dumped.rstrip(), ""]
    return "\n".join(lines)


class _Dumper(yaml.SafeDumper):
    """Block style, except that a list of scalars stays on one line: ``repeat: [a, b]``."""

    def represent_list(self, data: list[Any]) -> yaml.SequenceNode:
        flow = all(not isinstance(item, dict | list) for item in data)
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _Dumper.represent_list)


def _comment(text: str, indent: str = "") -> list[str]:
    return [f"# {indent}{line}" for line in textwrap.wrap(text, 96 - len(indent))]


def _comment_fields(model: type[BaseModel], extra: str = "") -> list[str]:
    lines = []
    for name, field in model.model_fields.items():
        lines += _comment(f"{name}: {field.description}", indent="  ")
    return lines + (_comment(extra, indent="  ") if extra else [])


# --- commands ----------------------------------------------------------------------------------


def cmd_validate(targets: Sequence[str] = ()) -> int:
    """``mergemeter template validate [NAME|PATH ...]``: every problem of each; all shipped if none."""
    paths: list[Path] = []
    failed = 0
    for target in targets:
        try:
            paths.append(find_template(target))
        except TemplateNotFound as exc:
            print(exc)
            failed += 1
    if not targets:
        paths = [info.path for info in list_templates()]
    for path in paths:
        template, problems = _check_file(path)
        if template is None:
            failed += 1
            for problem in problems:
                print(problem.format(path))
            print(f"{path}: {len(problems)} problem(s)")
        else:
            print(
                f"{path}: ok  {template.outline()}  (merge {template.merge_policy}, sha256 {content_hash(path)[:12]})"
            )
    return 1 if failed else 0


def cmd_schema() -> int:
    """``mergemeter template schema``: the JSON Schema of a template, for editors' YAML support."""
    print(json.dumps(Template.model_json_schema(), indent=2))
    return 0


def cmd_list() -> int:
    """``mergemeter template list``: the shipped templates, their pipelines and descriptions."""
    infos = list_templates()
    width = max((len(info.name) for info in infos), default=4)
    for info in infos:
        template, problems = _check_file(info.path)
        outline = template.outline() if template else f"INVALID ({len(problems)} problem(s))"
        print(f"{info.name:<{width}}  {outline}")
        print(f"{'':<{width}}  {info.description}")
    print(f"\n{len(infos)} template(s) in {template_dir()}")
    return 0


def cmd_new(name: str, dest_dir: str | Path = ".") -> int:
    """``mergemeter template new NAME [--dir DIR]``: write a commented template to start from."""
    try:
        path = scaffold(name, dest_dir)
    except (ValueError, FileExistsError) as exc:
        print(f"cannot create template: {exc}")
        return 1
    print(f"wrote {path}")
    print(f"edit it, then check it with: mergemeter template validate {path}")
    return 0
