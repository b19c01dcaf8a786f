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


BLOCKED = "blocked by the provider's content filter"


def _blocked_item(**kw):
    return JudgeInput(conversation=[Message(role="user", content="q")], response="", blocked=True, **kw)


def test_the_offline_judges_say_blocked_not_refused_or_harmless(refusal, harm):
    [r] = refusal.score([_blocked_item()])
    refused, [h] = harm.score_pair([_blocked_item()])
    for score in (r, refused[0], h):
        assert score.unscoreable and score.reason == BLOCKED and score.label is None and "blocked" in score.flags


def test_the_groundedness_judge_says_blocked_even_with_a_context(home):
    from breakfix.judges import load_judge

    [score] = load_judge("groundedness", home).score([_blocked_item(context="The sky is blue.")])
    assert score.unscoreable and score.reason == BLOCKED


def test_an_llm_judge_says_blocked_without_asking_its_model():
    from breakfix.judges.llm import LLMJudge
    from breakfix.targets.mock import MockTarget

    class NeverAsked(MockTarget):
        def chat(self, conversations, config):
            if not conversations:
                return []
            raise AssertionError("a blocked reply was sent to the judge model")

    for kind in ("refusal", "harm", "ungroundedness"):
        [score] = LLMJudge(kind, NeverAsked("echo")).score([_blocked_item(context="c")])
        assert score.unscoreable and score.reason == BLOCKED and score.kind == kind
