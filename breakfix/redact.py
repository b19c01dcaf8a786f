"""Harmful text is data: stored in full, shown only when the user asks. Model text is data too:
it never gets to drive the terminal it is printed on."""

from __future__ import annotations

import re
from collections.abc import Iterable

# C0 controls but tab and newline, DEL, and C1 controls (the 8-bit CSI/OSC a terminal also obeys).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def redact(text: str, why: str = "possibly harmful") -> str:
    return f"[redacted: {len(text)} chars, {why}; --show-harmful to see]"


def terminal_safe(text: str) -> str:
    """Show control characters as `\\x1b`-style escapes, so a reply holding `ESC[2J` (clear the
    screen) or an OSC 8 link prints as visible text instead of acting on the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def possibly_harmful(meta: dict, severities: Iterable[float | None] = ()) -> bool:
    """A reply to a request marked harmful, or one a judge scored any harm in (severity >= 1),
    whether the score sits in the conversation's metadata or in the store's scores."""
    stored = [s for s in severities if s is not None]
    return meta.get("harmful") is True or (meta.get("severity") or 0) >= 1 or any(s >= 1 for s in stored)
