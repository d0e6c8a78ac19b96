"""textkit: small, dependency-free text utilities."""

from textkit.duration import format_duration, parse_duration
from textkit.roman import from_roman, to_roman
from textkit.slug import slugify
from textkit.wrap import wrap

__all__ = ["format_duration", "from_roman", "parse_duration", "slugify", "to_roman", "wrap"]
__version__ = "0.3.0"
