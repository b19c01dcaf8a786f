"""Chat models behind one interface: local HF models, OpenAI-compatible endpoints, mocks."""

from breakfix.targets import hf, mock, openai  # noqa: F401  (register their schemes)
from breakfix.targets.base import Target, load_target, register_target

__all__ = ["Target", "load_target", "register_target"]
