"""Task kinds by name: what a pipeline template's ``kind:`` refers to.

A kind is a plain Prefect task registered under a short name. The built-in kinds are known by
name from the start but imported only when first asked for, so reading or validating a template
never imports the pipeline (nor litellm, nor Prefect). New kinds register themselves::

    @register("lint")
    @task
    def lint(ctx: ChangeContext, forge: Forge) -> TestResult: ...

or ``register_kind("lint", lint)``. ``get_kind("lint")`` returns the task; an unknown name raises
``UnknownTaskKind`` listing the valid names.
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Callable
from typing import Any, TypeVar

KIND_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")

# name -> "module:attribute"; imported on first use to keep template validation light and to
# avoid import cycles (the tasks import blocks, which may one day read templates).
_BUILTIN_KINDS: dict[str, str] = {
    "plan": "tasks.plan:plan",
    "implement": "tasks.implement:implement",
    "test": "tasks.run_tests:run_tests",
    "review": "tasks.review:review",
    "merge": "tasks.merge:merge",
    # bugfix: write a test that fails on the base and passes with the fix.
    "reproduce": "tasks.reproduce:reproduce",
}

# name -> a Prefect task, or a "module:attribute" reference not yet imported.
_kinds: dict[str, Any] = {}

T = TypeVar("T")


class UnknownTaskKind(LookupError):
    """No task kind is registered under this name."""

    def __init__(self, name: str, valid: list[str]) -> None:
        self.name = name
        self.valid = valid
        close = difflib.get_close_matches(name, valid, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        super().__init__(f"unknown task kind {name!r}{hint}; valid kinds: {', '.join(valid)}")


class TaskKindUnavailable(LookupError):
    """A kind is known by name but its task cannot be imported."""


def builtin_kinds() -> dict[str, str]:
    """The built-in kinds: name -> ``"module:attribute"`` of the task, not yet imported."""
    return dict(_BUILTIN_KINDS)


def kind_names() -> list[str]:
    """Every kind a template may name: the built-ins and those registered since, sorted."""
    return sorted(set(_BUILTIN_KINDS) | set(_kinds))


def is_kind(name: str) -> bool:
    """Whether ``name`` is a known kind (without importing its task)."""
    return name in _BUILTIN_KINDS or name in _kinds


def register_kind(name: str, task: Any, *, replace: bool = False) -> None:
    """Register a Prefect task (or a ``"module:attribute"`` reference to one) as kind ``name``.

    Registering a name twice is an error unless ``replace`` is true, so two plugins cannot
    silently shadow each other; a built-in may be replaced this way too.
    """
    if not KIND_NAME.match(name):
        raise ValueError(
            f"task kind name {name!r} must be lower-case letters, digits, '-' or '_', "
            "starting with a letter"
        )
    if not replace and name in _kinds:
        raise ValueError(f"task kind {name!r} is already registered; pass replace=True")
    if isinstance(task, str):
        _split_reference(task)
    else:
        _require_prefect_task(name, task)
    _kinds[name] = task


def register(kind: str, *, replace: bool = False) -> Callable[[T], T]:
    """Decorator form of ``register_kind``; put it above ``@task``. Returns the task unchanged."""

    def decorate(task: T) -> T:
        register_kind(kind, task, replace=replace)
        return task

    return decorate


def get_kind(name: str) -> Any:
    """The Prefect task registered as ``name``, importing a built-in on first use."""
    entry = _kinds.get(name, _BUILTIN_KINDS.get(name))
    if entry is None:
        raise UnknownTaskKind(name, kind_names())
    if isinstance(entry, str):
        entry = _import_reference(name, entry)
        _kinds[name] = entry
    return entry


def _split_reference(reference: str) -> tuple[str, str]:
    module, sep, attribute = reference.partition(":")
    if not (module and sep and attribute):
        raise ValueError(f"task reference {reference!r} must look like 'package.module:task'")
    return module, attribute


def _import_reference(name: str, reference: str) -> Any:
    module_name, attribute = _split_reference(reference)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not module_name.startswith(exc.name):
            raise  # the module exists but something it imports is missing: show that
        raise TaskKindUnavailable(
            f"task kind {name!r} needs {reference}, but module {module_name!r} does not exist; "
            f"create it or register the kind with register_kind({name!r}, task)"
        ) from exc
    try:
        task = getattr(module, attribute)
    except AttributeError as exc:
        raise TaskKindUnavailable(
            f"task kind {name!r} needs {reference}, but {module_name!r} has no {attribute!r}"
        ) from exc
    _require_prefect_task(name, task)
    return task


def _require_prefect_task(name: str, task: Any) -> None:
    from prefect import Task

    if not isinstance(task, Task):
        raise TypeError(
            f"task kind {name!r} must be a Prefect task (decorate it with @task), "
            f"got {type(task).__name__}"
        )
