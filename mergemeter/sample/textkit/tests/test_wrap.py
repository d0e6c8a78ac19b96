import pytest

from textkit import wrap


def test_short_text_is_one_line():
    assert wrap("hello world", width=20) == ["hello world"]


def test_wraps_at_width():
    assert wrap("one two three four", width=9) == ["one two", "three", "four"]


def test_long_word_gets_own_line():
    assert wrap("a supercalifragilistic b", width=5) == ["a", "supercalifragilistic", "b"]


def test_paragraphs_are_separated():
    assert wrap("one two\n\nthree", width=20) == ["one two", "", "three"]


def test_width_must_be_positive():
    with pytest.raises(ValueError):
        wrap("x", width=0)
