"""Text converters for attacks, each with its inverse where one exists (so judges can decode).

One family per module; `@register_converter` records each. The `breakfix.converters` entry-point
group adds third-party converters.
"""

from breakfix.converters import encoding  # noqa: F401  (registers the built-in converters)
from breakfix.converters.base import CONVERTERS, Converter, decode_chain, get_converter, register_converter

__all__ = ["CONVERTERS", "Converter", "decode_chain", "get_converter", "register_converter"]
