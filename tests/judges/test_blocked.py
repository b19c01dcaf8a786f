"""A reply a content filter withheld is "blocked", not a refusal: judges cannot score it."""

from breakfix.judges.base import prepare
from breakfix.targets.base import blocked, is_blocked
from breakfix.types import JudgeInput, Message, Reply


def test_blocked_is_a_finish_reason_and_not_a_usable_reply():
    reply = blocked("content_filter")
    assert reply.finish_reason == "blocked" and is_blocked(reply) and not reply.ok
    # a reply rebuilt from an older record (an error naming the filter) still counts as blocked
    assert is_blocked(Reply(finish_reason="error", error=reply.error))
    assert not is_blocked(Reply(finish_reason="error", error="HTTP 500"))


def test_prepare_marks_a_blocked_reply_unscoreable_not_empty_text_to_judge():
    item = JudgeInput(conversation=[Message(role="user", content="q")], response="", blocked=True)
    p = prepare(item, offline=True)
    assert p.unreadable and "blocked" in p.flags
    plain = prepare(JudgeInput(conversation=[Message(role="user", content="q")], response="sure"), offline=True)
    assert not plain.unreadable and "blocked" not in plain.flags
