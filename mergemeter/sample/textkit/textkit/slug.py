"""URL slugs from arbitrary titles."""

import re
import unicodedata

_SEPARATORS = re.compile(r"[\s_\-]+")
_UNSAFE = re.compile(r"[^a-z0-9\-]")


def _ascii_fold(text: str) -> str:
    normalized = unicodedata.normalize("NFKD", text)
    return normalized.encode("ascii", "ignore").decode("ascii")


def slugify(text: str, max_length: int = 80, separator: str = "-") -> str:
    """Return a lowercase ASCII slug for ``text``.

    >>> slugify("Hello, World!")
    'hello-world'
    """
    if max_length < 1:
        raise ValueError("max_length must be at least 1")
    folded = _ascii_fold(text).lower()
    dashed = _SEPARATORS.sub("-", folded)
    cleaned = _UNSAFE.sub("", dashed)
    words = [w for w in cleaned.split("-") if w]
    slug = words[0]
    for word in words[1:]:
        if len(slug) + 1 + len(word) > max_length:
            break
        slug = slug + "-" + word
    slug = slug[:max_length]
    return slug.replace("-", separator)
