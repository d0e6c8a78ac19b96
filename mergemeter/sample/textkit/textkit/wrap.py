"""Greedy word wrapping."""


def wrap(text: str, width: int = 72) -> list[str]:
    """Wrap ``text`` into lines of at most ``width`` characters.

    Words longer than ``width`` are placed on a line of their own.
    Paragraphs (separated by blank lines) are wrapped separately and
    separated by an empty string in the result.
    """
    if width < 1:
        raise ValueError("width must be at least 1")
    lines: list[str] = []
    paragraphs = [p for p in text.split("\n\n")]
    for index, paragraph in enumerate(paragraphs):
        if index:
            lines.append("")
        current = ""
        for word in paragraph.split():
            if not current:
                current = word
            elif len(current) + 1 + len(word) <= width:
                current = current + " " + word
            else:
                lines.append(current)
                current = word
        if current:
            lines.append(current)
    return lines
