"""SEARCH/REPLACE edit blocks: parse them from a model's answer and apply them to a workspace.

The format (the one models apply most reliably)::

    path/to/file.py
    <<<<<<< SEARCH
    exact lines to find
    =======
    lines to put instead
    >>>>>>> REPLACE

An empty SEARCH creates the file (or appends to it). A SEARCH that does not match is an
`EditError` naming the file and the text, which the next attempt receives as feedback.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

SEARCH, DIVIDER, REPLACE = "<<<<<<< SEARCH", "=======", ">>>>>>> REPLACE"


class EditBlock(BaseModel):
    """One SEARCH/REPLACE edit of one file."""

    path: str = Field(description="File path relative to the repository root.")
    search: str = Field(description="Exact text to find; empty to create or append.")
    replace: str = Field(description="Text to put in its place.")


class EditError(ValueError):
    """An edit block is malformed or does not apply; the message is feedback for the model."""


def parse_edit_blocks(answer: str) -> list[EditBlock]:
    """Every edit block in ``answer``, in order. Malformed blocks raise EditError."""
    lines = answer.splitlines()
    blocks: list[EditBlock] = []
    index = 0
    while index < len(lines):
        if lines[index].strip() != SEARCH:
            index += 1
            continue
        path = _path_above(lines, index)
        try:
            divider = next(i for i in range(index + 1, len(lines)) if lines[i].strip() == DIVIDER)
            end = next(i for i in range(divider + 1, len(lines)) if lines[i].strip() == REPLACE)
        except StopIteration:
            raise EditError(
                f"edit block for {path} is not closed with {DIVIDER} and {REPLACE}"
            ) from None
        blocks.append(
            EditBlock(
                path=path,
                search=_joined(lines[index + 1 : divider]),
                replace=_joined(lines[divider + 1 : end]),
            )
        )
        index = end + 1
    return blocks


def _path_above(lines: list[str], index: int) -> str:
    for candidate in reversed(lines[:index]):
        name = candidate.strip().strip("`*").strip()
        if name:
            if " " in name or name.startswith(("<", "=", ">")):
                break
            return name
    raise EditError(f"edit block at line {index + 1} has no file name on the line above it")


def _joined(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def _safe_path(root: Path, relative: str) -> Path:
    target = (root / relative).resolve()
    if not target.is_relative_to(root.resolve()):
        raise EditError(f"{relative} is outside the repository")
    return target


def apply_edit_blocks(root: Path, blocks: list[EditBlock]) -> None:
    """Apply ``blocks`` to the files under ``root``: all of them or, on the first failure, none."""
    pending: dict[Path, str] = {}
    for number, block in enumerate(blocks, start=1):
        target = _safe_path(root, block.path)
        if target in pending:
            text = pending[target]
        elif target.exists():
            text = target.read_text(encoding="utf-8")
        else:
            text = ""
        if not block.search:
            pending[target] = text + block.replace
            continue
        count = text.count(block.search)
        if count == 0:
            raise EditError(
                f"edit {number} ({block.path}): the SEARCH text is not in the file:\n{block.search}"
            )
        if count > 1:
            raise EditError(
                f"edit {number} ({block.path}): the SEARCH text occurs {count} times; "
                "include more lines so it matches once"
            )
        pending[target] = text.replace(block.search, block.replace, 1)
    for target, text in pending.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def apply_answer(root: Path, answer: str) -> list[EditBlock]:
    """Parse a model's answer and apply its edit blocks; EditError if it has none or they fail."""
    blocks = parse_edit_blocks(answer)
    if not blocks:
        raise EditError("the answer holds no SEARCH/REPLACE block")
    apply_edit_blocks(root, blocks)
    return blocks
