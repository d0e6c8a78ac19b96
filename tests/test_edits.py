from pathlib import Path

import pytest

from tasks.edits import EditBlock, EditError, apply_edit_blocks, parse_edit_blocks

ANSWER = """Here is the fix.

pkg/mod.py
<<<<<<< SEARCH
def f():
    return 1
=======
def f():
    return 2
>>>>>>> REPLACE

```
pkg/new.py
<<<<<<< SEARCH
=======
X = 1
>>>>>>> REPLACE
```
"""


def test_parse_reads_paths_search_and_replace() -> None:
    blocks = parse_edit_blocks(ANSWER)
    assert [b.path for b in blocks] == ["pkg/mod.py", "pkg/new.py"]
    assert blocks[0].search == "def f():\n    return 1\n"
    assert blocks[0].replace == "def f():\n    return 2\n"
    assert blocks[1].search == "" and blocks[1].replace == "X = 1\n"


def test_apply_changes_files_and_creates_new_ones(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text("import os\n\ndef f():\n    return 1\n")
    apply_edit_blocks(tmp_path, parse_edit_blocks(ANSWER))
    assert (tmp_path / "pkg" / "mod.py").read_text() == "import os\n\ndef f():\n    return 2\n"
    assert (tmp_path / "pkg" / "new.py").read_text() == "X = 1\n"


def test_non_matching_edit_is_a_clear_error_and_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("a = 1\n")
    (tmp_path / "b.py").write_text("b = 1\n")
    blocks = [
        EditBlock(path="a.py", search="a = 1\n", replace="a = 2\n"),
        EditBlock(path="b.py", search="b = 42\n", replace="b = 2\n"),
    ]
    with pytest.raises(EditError, match=r"edit 2 \(b.py\): the SEARCH text is not in the file"):
        apply_edit_blocks(tmp_path, blocks)
    assert (tmp_path / "a.py").read_text() == "a = 1\n", (
        "a failed edit must not leave half a change"
    )


def test_ambiguous_search_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\nx = 1\n")
    with pytest.raises(EditError, match="occurs 2 times"):
        apply_edit_blocks(tmp_path, [EditBlock(path="a.py", search="x = 1\n", replace="y\n")])


def test_edit_outside_the_repository_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EditError, match="outside the repository"):
        apply_edit_blocks(tmp_path, [EditBlock(path="../evil.py", search="", replace="x")])


def test_unclosed_block_is_an_error() -> None:
    with pytest.raises(EditError, match="not closed"):
        parse_edit_blocks("a.py\n<<<<<<< SEARCH\nx\n=======\ny\n")
