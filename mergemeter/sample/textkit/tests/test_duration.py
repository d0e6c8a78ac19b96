import pytest

from textkit import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("5m", 300), ("2h", 7200), ("1d", 86400), (" 3 M ", 180)],
)
def test_parse_simple(text, seconds):
    assert parse_duration(text) == seconds


def test_parse_rejects_garbage():
    with pytest.raises(ValueError):
        parse_duration("soon")


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (59, "59s"), (3660, "1h1m"), (90061, "1d1h1m1s")]
)
def test_format(seconds, text):
    assert format_duration(seconds) == text


def test_format_rejects_negative():
    with pytest.raises(ValueError):
        format_duration(-1)
