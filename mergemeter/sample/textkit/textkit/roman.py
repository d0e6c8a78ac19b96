"""Roman numerals between 1 and 3999."""

_NUMERALS = [
    (1000, "M"),
    (900, "CM"),
    (500, "D"),
    (400, "CD"),
    (100, "C"),
    (90, "XC"),
    (50, "L"),
    (40, "XL"),
    (10, "X"),
    (9, "IX"),
    (5, "V"),
    (4, "IV"),
    (1, "I"),
]


def to_roman(number: int) -> str:
    """Return the Roman numeral for ``number``.

    >>> to_roman(1994)
    'MCMXCIV'
    """
    if number > 3999:
        raise ValueError("Roman numerals stop at 3999")
    result = []
    for value, numeral in _NUMERALS:
        while number >= value:
            result.append(numeral)
            number -= value
    return "".join(result)


def from_roman(numeral: str) -> int:
    """Return the integer value of a Roman numeral (strict: canonical form only)."""
    text = numeral.strip().upper()
    if not text:
        raise ValueError("empty numeral")
    total = 0
    index = 0
    for value, symbol in _NUMERALS:
        while text.startswith(symbol, index):
            total += value
            index += len(symbol)
    if index != len(text) or to_roman(total) != text:
        raise ValueError(f"not a canonical Roman numeral: {numeral!r}")
    return total
