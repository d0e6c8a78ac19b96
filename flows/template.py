"""Pipeline templates: the declarative definition of how one change is made.

A template (YAML under ``flows/templates/``) names its steps in order — each a registered task
kind (``tasks/registry.py``) played by a model role or by no model — the fix loop (which steps
repeat after a failed test or a rejected review, and how often), the merge policy, the paths a
change may or may not touch, and a budget. ``resolve_issue`` interprets it.

``validate_file`` reports every problem of a file at once, each with the field path and the
line it is on; ``load_template`` returns a ``Template`` or raises ``TemplateError`` listing them.

This module holds the schema and checks files against it; the rest is re-exported here from
``flows/globs.py``, ``flows/template_problems.py`` (``Problem``, cross-field checks, YAML lines),
``flows/template_files.py`` (finding, listing, hashing files) and ``flows/template_cli.py`` (the
``mergemeter template`` commands, the scaffold; it imports this module, so resolved lazily).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

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

from flows.globs import glob_problem, match_glob
from flows.template_files import TemplateInfo as TemplateInfo
from flows.template_files import TemplateNotFound as TemplateNotFound
from flows.template_files import content_hash as content_hash
from flows.template_files import find_template as find_template
from flows.template_files import list_templates as list_templates
from flows.template_files import template_dir as template_dir
from flows.template_problems import (
    DEFAULT_TEST_COMMAND,
    Loc,
    Problem,
    TemplateError,
    _did_you_mean,
    _duplicate_keys,
    _line_of,
    _parse,
    cross_field_problems,
    format_location,
)
from flows.template_problems import MERGE_KIND as MERGE_KIND
from flows.template_problems import TEST_COMMAND_KINDS as TEST_COMMAND_KINDS
from tasks import registry

if TYPE_CHECKING:  # at run time, __getattr__ (at the end) imports them when first asked for
    from flows.template_cli import cmd_list as cmd_list
    from flows.template_cli import cmd_new as cmd_new
    from flows.template_cli import cmd_schema as cmd_schema
    from flows.template_cli import cmd_validate as cmd_validate
    from flows.template_cli import render_yaml as render_yaml
    from flows.template_cli import scaffold as scaffold

SLUG = re.compile(r"^[a-z][a-z0-9_-]*$")
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
        default=DEFAULT_TEST_COMMAND,
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


# --- checking a file against the schema ------------------------------------------------------


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


def load_template(name_or_path: str | Path) -> Template:
    """The template by name or path; ``TemplateError`` lists every problem if it is invalid."""
    path = find_template(name_or_path)
    template, problems = _check_file(path)
    if template is None:
        raise TemplateError(problems, path)
    return template


# --- names defined in flows/template_cli.py ----------------------------------------------------

_CLI_NAMES = ("cmd_list", "cmd_new", "cmd_schema", "cmd_validate", "render_yaml", "scaffold")


def __getattr__(name: str) -> Any:
    """``cmd_*``, ``scaffold`` and ``render_yaml`` from ``flows.template_cli``, which imports us."""
    if name in _CLI_NAMES:
        from flows import template_cli

        return getattr(template_cli, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_CLI_NAMES})
