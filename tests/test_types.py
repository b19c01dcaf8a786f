import pytest
from pydantic import ValidationError

from breakfix.types import GenerationConfig, Message, Reply, user


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
