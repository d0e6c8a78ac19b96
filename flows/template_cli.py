"""The ``mergemeter template`` commands, and the commented YAML a new template starts from.

``cmd_validate``, ``cmd_list``, ``cmd_new`` and ``cmd_schema`` print their result and return the
exit status. ``scaffold`` writes the default pipeline under a new name, each field's description
a comment above it (``render_yaml``). ``flows.template`` re-exports all of these.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from flows.template import (
    SLUG,
    FixLoop,
    Step,
    Template,
    TemplateError,
    _check_file,
    check_text,
    load_template,
)
from flows.template_files import (
    TemplateNotFound,
    content_hash,
    find_template,
    list_templates,
    template_dir,
)
from tasks import registry

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
