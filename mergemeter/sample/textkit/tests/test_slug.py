import pytest

from textkit import slugify


def test_basic_title():
    assert slugify("Hello, World!") == "hello-world"


def test_accents_are_folded():
    assert slugify("Crème brûlée à la carte") == "creme-brulee-a-la-carte"


def test_runs_of_separators_collapse():
    assert slugify("a  --  b__c") == "a-b-c"


def test_max_length_keeps_whole_words():
    assert slugify("the quick brown fox", max_length=12) == "the-quick"


def test_custom_separator():
    assert slugify("Release notes 2024", separator="_") == "release_notes_2024"


def test_invalid_max_length():
    with pytest.raises(ValueError):
        slugify("x", max_length=0)
