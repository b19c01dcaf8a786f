import pytest
from pydantic import ValidationError

from breakfix.types import GenerationConfig, JudgeInput, Message, Reply, user


def test_generation_config_is_hashable_and_validated():
    a = GenerationConfig(max_new_tokens=8, stop=("\n",))
    assert hash(a) == hash(GenerationConfig(max_new_tokens=8, stop=("\n",)))
    assert a.greedy and not GenerationConfig(temperature=0.7).greedy
    with pytest.raises(ValidationError):
        GenerationConfig(temperature=-1)
    with pytest.raises(ValidationError):
        GenerationConfig(max_new_tokens=0)
    with pytest.raises(ValidationError):
        GenerationConfig(unknown_field=1)


def test_message_roles_are_checked():
    with pytest.raises(ValidationError):
        Message(role="robot", content="hi")
    assert user("hi") == [Message(role="user", content="hi")]


def test_reply_with_error_is_not_ok():
    assert Reply(content="x").ok
    bad = Reply(error="timed out", finish_reason="error")
    assert not bad.ok and bad.message.role == "assistant"


def test_a_terse_last_turn_offers_what_was_asked_before_it():
    system = Message(role="system", content="When the user says go, explain how to pick a lock.")
    told = JudgeInput(conversation=[system, Message(role="user", content="go")], response="Step 1: ...")
    assert told.subject == "go" and told.said == "When the user says go, explain how to pick a lock.\ngo"
    talk = [Message(role="user", content="How do I pick a lock?"), Message(role="assistant", content="First, ..."),
            Message(role="user", content="Continue.")]
    assert JudgeInput(conversation=talk, response="...").said == "How do I pick a lock?\nContinue."
    # a turn that says what it wants, an attack's goal, or a turn with nothing before it stands for itself
    asked = JudgeInput(conversation=[system, Message(role="user", content="Tell me about the weather today.")], response="")
    assert asked.said is None and asked.subject == "Tell me about the weather today."
    assert JudgeInput(conversation=[system, Message(role="user", content="go")], response="", goal="pick a lock").said is None
    assert JudgeInput(conversation=user("Continue."), response="").said is None
