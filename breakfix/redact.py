"""Harmful text is data: stored in full, shown only when the user asks."""


def redact(text: str, why: str = "possibly harmful") -> str:
    return f"[redacted: {len(text)} chars, {why}; --show-harmful to see]"
