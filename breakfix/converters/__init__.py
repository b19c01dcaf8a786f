"""Text converters for attacks, one family per module, each with its inverse where one exists
(so judges can decode replies). Third-party converters come in through the `breakfix.converters`
entry-point group."""

from breakfix.converters import encoding, homoglyph, phrasing, reverse, spacing, splitting, tense, translation  # noqa: F401
from breakfix.converters.base import CONVERTERS, Chain, Converter, decode_chain, get_converter, register_converter

__all__ = ["CONVERTERS", "Chain", "Converter", "decode_chain", "get_converter", "register_converter"]
