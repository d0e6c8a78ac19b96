"""Where pipeline templates are: the shipped folder, one by name or path, the list, a hash.

``find_template`` takes a shipped template's name (``"bugfix"``) or a path to a file and raises
``TemplateNotFound``, naming the shipped templates, when there is none; ``list_templates``
reads only each file's description, so a file that does not parse is still listed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import NamedTuple

import yaml

from flows.template_problems import _did_you_mean


class TemplateNotFound(LookupError):
    """No template file by that name or path."""


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
