"""The run store: runs, rounds, conversations, scores, findings, datasets and checkpoints."""

from breakfix.store.db import SCHEMA_VERSION, ConversationRecord, RunRecord, ScoreRecord, Store

__all__ = ["SCHEMA_VERSION", "ConversationRecord", "RunRecord", "ScoreRecord", "Store"]
