import pytest

from textkit import from_roman, to_roman


@pytest.mark.parametrize(
    ("number", "numeral"),
    [(1, "I"), (4, "IV"), (9, "IX"), (14, "XIV"), (40, "XL"), (1994, "MCMXCIV"), (3999, "MMMCMXCIX")],
)
def test_round_trip(number, numeral):
    assert to_roman(number) == numeral
    assert from_roman(numeral) == number


def test_too_large():
    with pytest.raises(ValueError):
        to_roman(4000)


def test_from_roman_rejects_non_canonical():
    with pytest.raises(ValueError):
        from_roman("IIII")


def test_from_roman_rejects_empty():
    with pytest.raises(ValueError):
        from_roman("  ")
