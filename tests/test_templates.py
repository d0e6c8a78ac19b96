"""Pipeline templates: the shipped ones validate, a broken one gets every problem with its line."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from flows import template as tpl
from flows.template import Problem, Template, TemplateError
from tasks import registry

BROKEN = """\
name: broken
description: a template with several problems
steps:
  - id: plan
    kind: plan
    role: planner
  - id: implement
    kind: implemnt
    role: coder
    retries: [1]
  - id: merge
    kind: merge
fix_loop:
  repeat: [implement, tests]
  max_attempts: three
protected_paths:
  - ".github/**"
  - "src/[abc.py"
budget_usd: -5
merge_policy: auto
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def minimal(**overrides: str) -> str:
    """A small valid template as YAML text, with top-level fields replaced by raw YAML."""
    fields = {
        "name": "small",
        "description": "small",
        "steps": "\n  - {id: implement, kind: implement, role: coder}"
        "\n  - {id: test, kind: test}\n  - {id: merge, kind: merge}",
        "fix_loop": "\n  repeat: [implement, test]",
        "merge_policy": "auto",
    } | overrides
    return "".join(f"{key}: {value}\n" for key, value in fields.items())


def where(problems: list[Problem]) -> list[tuple[str, int]]:
    return [(p.location, p.line) for p in problems]


@pytest.fixture
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Kinds registered by a test disappear after it."""
    monkeypatch.setattr(registry, "_kinds", {})
    yield


@pytest.mark.parametrize("name", ["default", "bugfix", "docs"])
def test_each_shipped_template_validates_and_names_its_file(name: str) -> None:
    path = tpl.find_template(name)
    assert tpl.validate_file(path) == []
    template = tpl.load_template(name)
    assert template.name == path.stem == name
    assert template.merge_step.kind == "merge"


def test_shipped_pipelines_read_as_designed() -> None:
    outlines = {name: tpl.load_template(name).outline() for name in ("default", "bugfix", "docs")}
    assert outlines == {
        "default": "plan → implement ⇄ test ⇄ review → merge",
        "bugfix": "plan → reproduce → implement ⇄ test ⇄ review → merge",
        "docs": "plan → implement ⇄ review → merge",
    }
    bugfix = tpl.load_template("bugfix")
    assert bugfix.step("reproduce").role == "coder"
    assert [s.id for s in bugfix.repeated_steps] == ["implement", "test", "review"]


def test_docs_template_may_touch_documentation_only() -> None:
    docs = tpl.load_template("docs")
    assert docs.test_command == ""
    assert "test" not in {step.kind for step in docs.steps}
    paths = ["README.md", "docs/guide/install.md", "docs/img/flow.png", "src/app.py", "CHANGES.rst"]
    assert docs.disallowed(paths) == ["src/app.py"]
    assert docs.protected([".github/workflows/ci.yml", "docs/ci.md"]) == [
        ".github/workflows/ci.yml"
    ]


def test_broken_template_reports_every_problem_with_its_location_and_line(tmp_path: Path) -> None:
    problems = tpl.validate_file(write(tmp_path, "broken", BROKEN))

    assert where(problems) == [
        ("steps[1].kind", 8),
        ("steps[1].retries", 10),
        ("fix_loop.repeat[1]", 14),
        ("fix_loop.max_attempts", 15),
        ("protected_paths[1]", 18),
        ("budget_usd", 19),
    ]
    messages = {p.location: p.message for p in problems}
    assert "did you mean 'implement'" in messages["steps[1].kind"]
    assert messages["fix_loop.repeat[1]"].startswith("'tests' is not a step id")
    assert "step ids: plan, implement, merge" in messages["fix_loop.repeat[1]"]
    assert "unbalanced '['" in messages["protected_paths[1]"]
    assert "greater than 0" in messages["budget_usd"] and "-5" in messages["budget_usd"]
    assert "three" in messages["fix_loop.max_attempts"]


def test_unknown_kind_lists_the_valid_names(tmp_path: Path) -> None:
    problems = tpl.validate_file(write(tmp_path, "broken", BROKEN))
    message = next(p.message for p in problems if p.location == "steps[1].kind")
    assert message.startswith("unknown task kind 'implemnt'")
    assert "valid kinds: implement, merge, plan, reproduce, review, test" in message

    with pytest.raises(registry.UnknownTaskKind, match="valid kinds: implement, merge, plan"):
        registry.get_kind("deploy")


def test_load_template_raises_with_every_problem_as_file_line_location(tmp_path: Path) -> None:
    path = write(tmp_path, "broken", BROKEN)
    with pytest.raises(TemplateError) as caught:
        tpl.load_template(path)
    lines = str(caught.value).splitlines()
    assert len(lines) == len(caught.value.problems) == 6
    assert lines[0].startswith(f"{path}:8: steps[1].kind: unknown task kind 'implemnt'")
    assert lines[-1].startswith(f"{path}:19: budget_usd: ")


def test_yaml_syntax_error_is_reported_with_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path, "small", minimal(merge_policy="auto\nprotected_paths: [a, b\nmax_units: 2")
    )
    [problem] = tpl.validate_file(path)
    assert problem.location == ""
    assert problem.line == 11
    assert problem.message.startswith("invalid YAML: while parsing a flow sequence on line 10,")


def test_unknown_and_missing_fields_say_what_is_valid(tmp_path: Path) -> None:
    text = minimal(fix_loop="\n  max_attempts: 2", budget_used="1.0")
    problems = tpl.validate_file(write(tmp_path, "small", text))
    messages = {(p.location, p.line): p.message for p in problems}
    assert messages[("fix_loop.repeat", 7)] == "missing required field 'repeat'"
    assert messages[("budget_used", 10)].startswith(
        "unknown field 'budget_used' (did you mean 'budget_usd'?); valid fields: allowed_paths,"
    )


def test_cross_field_rules(tmp_path: Path) -> None:
    steps = (
        "\n  - {id: implement, kind: implement, role: coder}"
        "\n  - {id: merge, kind: merge}"
        "\n  - {id: implement, kind: test}"
    )
    text = minimal(steps=steps, fix_loop="\n  repeat: [test, merge, implement]", test_command='""')
    problems = tpl.validate_file(write(tmp_path, "small", text))
    assert {(p.location, p.line) for p in problems} == {
        ("steps[1].kind", 5),  # the merge step must be last
        ("steps[2].id", 6),  # duplicate id
        ("fix_loop.repeat[0]", 8),  # 'test' is a kind here, not a step id
        ("fix_loop.repeat[1]", 8),  # the merge step cannot repeat
        ("test_command", 10),  # a test step needs a command
    }


def test_a_wrongly_typed_value_is_reported_once(tmp_path: Path) -> None:
    text = minimal(fix_loop="\n  repeat: [1, test]", merge_policy="yolo")
    problems = tpl.validate_file(write(tmp_path, "small", text))
    assert [(p.location, p.line, p.message) for p in problems] == [
        ("fix_loop.repeat[0]", 8, "should be a valid string (got 1)"),
        ("merge_policy", 9, "should be 'auto', 'human-approval' or 'draft' (got 'yolo')"),
    ]


def test_a_template_must_have_one_merge_step_and_its_name_must_match_the_file(
    tmp_path: Path,
) -> None:
    text = minimal(
        steps="\n  - {id: implement, kind: implement}", fix_loop="\n  repeat: [implement]"
    )
    problems = tpl.validate_file(write(tmp_path, "other", text))
    assert where(problems) == [("name", 1), ("steps", 3)]
    assert "no step has kind 'merge'" in problems[1].message


def test_duplicate_yaml_keys_are_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "small", minimal() + "merge_policy: draft\n")
    [problem] = tpl.validate_file(path)
    assert (problem.location, problem.line) == ("merge_policy", 10)
    assert "first on line 9" in problem.message


@pytest.mark.parametrize(
    ("glob", "reason"),
    [
        ("src/[abc.py", "unbalanced '['"),
        ("/etc/passwd", "relative"),
        ("docs/../src/**", "'..'"),
        ("docs/", "ends with '/'"),
        ("src/**.py", "whole path segment"),
        ("", "empty"),
    ],
)
def test_invalid_globs_say_why(glob: str, reason: str) -> None:
    problem = tpl.glob_problem(glob)
    assert problem is not None and reason in problem


@pytest.mark.parametrize(
    ("glob", "path", "matches"),
    [
        ("**/*.md", "README.md", True),
        ("**/*.md", "docs/a/b.md", True),
        ("*.md", "docs/b.md", False),
        ("docs/**", "docs/a/b.png", True),
        ("src/[!t]*.py", "src/app.py", True),
        ("src/[!t]*.py", "src/test.py", False),
        (".github/**", "./.github/workflows/ci.yml", True),
    ],
)
def test_glob_matching(glob: str, path: str, matches: bool) -> None:
    assert tpl.glob_problem(glob) is None
    assert tpl.match_glob(glob, path) is matches


def test_a_template_built_in_python_is_checked_across_fields_too() -> None:
    data = tpl.load_template("default").model_dump()
    data["fix_loop"]["repeat"] = ["implement", "lint"]
    with pytest.raises(ValidationError, match=r"fix_loop\.repeat\[1\]: 'lint' is not a step id"):
        Template.model_validate(data)


def test_scaffold_writes_a_template_that_validates(tmp_path: Path) -> None:
    path = tpl.scaffold("dependency-bump", tmp_path / "templates")
    assert path == tmp_path / "templates" / "dependency-bump.yaml"
    assert tpl.validate_file(path) == []
    template = tpl.load_template(path)
    assert template.name == "dependency-bump"
    assert template.outline() == tpl.load_template("default").outline()
    assert "# Globs of paths an auto-merged change never touches" in path.read_text()
    with pytest.raises(FileExistsError):
        tpl.scaffold("dependency-bump", tmp_path / "templates")


def test_content_hash_changes_when_the_file_changes(tmp_path: Path) -> None:
    path = write(tmp_path, "small", minimal())
    before = tpl.content_hash(path)
    assert before == tpl.content_hash(path) and len(before) == 64
    path.write_text(minimal(budget_usd="1.5"), encoding="utf-8")
    assert tpl.content_hash(path) != before


def test_list_shows_the_three_shipped_templates() -> None:
    infos = tpl.list_templates()
    assert [info.name for info in infos] == ["bugfix", "default", "docs"]
    assert all(info.description and info.path.is_file() for info in infos)


def test_find_template_by_unknown_name_lists_the_shipped_ones() -> None:
    with pytest.raises(tpl.TemplateNotFound, match="did you mean 'default'.*bugfix, default, docs"):
        tpl.find_template("defualt")


def test_commands_print_and_return_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tpl.cmd_list() == 0
    listed = capsys.readouterr().out
    assert "default  plan → implement ⇄ test ⇄ review → merge" in listed

    assert tpl.cmd_validate() == 0
    assert capsys.readouterr().out.count(": ok  ") == 3

    broken = write(tmp_path, "broken", BROKEN)
    assert tpl.cmd_validate([str(broken), "default"]) == 1
    out = capsys.readouterr().out
    assert f"{broken}:14: fix_loop.repeat[1]: 'tests' is not a step id" in out
    assert "6 problem(s)" in out and "default.yaml: ok" in out

    assert tpl.cmd_schema() == 0
    assert '"fix_loop"' in capsys.readouterr().out

    assert tpl.cmd_new("mine", tmp_path) == 0
    assert tpl.cmd_new("mine", tmp_path) == 1
    assert "already exists" in capsys.readouterr().out.splitlines()[-1]


def test_shipped_steps_resolve_to_tasks_with_their_options() -> None:
    from prefect.cache_policies import NO_CACHE

    from tasks.policy import STEP_CACHE

    for step in tpl.load_template("default").steps:
        configured = registry.get_kind(step.kind).with_options(**step.task_options())
        if step.retries is not None:
            assert configured.retries == step.retries
        assert configured.cache_policy == (STEP_CACHE if step.cache == "inputs" else NO_CACHE)
    assert registry.get_kind("test").name == "run_tests"


def test_a_registered_kind_can_be_named_by_a_template(
    tmp_path: Path, isolated_registry: None
) -> None:
    from prefect import task

    @registry.register("lint")
    @task
    def lint() -> bool:
        return True

    assert registry.get_kind("lint") is lint
    assert "lint" in registry.kind_names()
    steps = "\n  - {id: implement, kind: implement}\n  - {id: lint, kind: lint}\n  - {id: merge, kind: merge}"
    path = write(tmp_path, "small", minimal(steps=steps, fix_loop="\n  repeat: [implement, lint]"))
    assert tpl.validate_file(path) == []

    with pytest.raises(ValueError, match="already registered"):
        registry.register_kind("lint", lint)
    with pytest.raises(TypeError, match="decorate it with @task"):
        registry.register_kind("plain", lambda: None)


def test_a_kind_whose_module_is_missing_fails_clearly(isolated_registry: None) -> None:
    registry.register_kind("ghost", "tasks.no_such_module:ghost")
    with pytest.raises(
        registry.TaskKindUnavailable, match="module 'tasks.no_such_module' does not"
    ):
        registry.get_kind("ghost")
