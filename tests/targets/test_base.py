import pytest

from breakfix.errors import TargetError
from breakfix.targets import Target, load_target
from breakfix.targets.base import cut_at_stop, with_system
from breakfix.targets.mock import MockTarget
from breakfix.targets.openai import OpenAITarget
from breakfix.types import GenerationConfig, Message, user


def test_model_strings_resolve_to_targets():
    assert isinstance(load_target("mock:refuse"), MockTarget)
    remote = load_target("openai:llama3@http://127.0.0.1:9/v1")
    assert isinstance(remote, OpenAITarget)
    assert (remote.model, remote.base_url) == ("llama3", "http://127.0.0.1:9/v1")
    assert isinstance(remote, Target)


@pytest.mark.parametrize("spec, message", [
    ("gpt-17", "unknown model 'gpt-17'"),
    ("openai:nourl@ftp://x", "expected openai:MODEL@http"),
    ("hf:", "needs a path"),
    ("hf:/no/such/dir", "does not exist"),
    ("mock:sulk", "unknown mock behaviour"),
])
def test_bad_model_strings_say_what_is_accepted(spec, message):
    with pytest.raises(TargetError, match=message):
        load_target(spec)


def test_a_directory_without_a_model_is_a_clear_error(tmp_path):
    with pytest.raises(TargetError, match="cannot load a causal LM"):
        load_target(str(tmp_path))


def test_system_prompt_is_added_only_when_missing():
    config = GenerationConfig(system_prompt="be brief")
    assert with_system(user("hi"), config)[0] == Message(role="system", content="be brief")
    own = [Message(role="system", content="mine"), *user("hi")]
    assert with_system(own, config) == own
    assert with_system(user("hi"), GenerationConfig()) == user("hi")


def test_cut_at_stop_takes_the_earliest_stop():
    assert cut_at_stop("a. b! c", [". ", "!"]) == ("a", True)
    assert cut_at_stop("abc", ["x"]) == ("abc", False)
    assert cut_at_stop("abc", []) == ("abc", False)


def test_mock_scripts_replies_then_falls_back_to_its_behaviour():
    mock = MockTarget("refuse")
    mock.enqueue("scripted one")
    replies = mock.chat([user("a"), user("b")], GenerationConfig())
    assert replies[0].content == "scripted one"
    assert replies[1].content.startswith("I can't help")
    assert mock.batches == [2]
    mock.enqueue(RuntimeError("boom"))
    with pytest.raises(RuntimeError):
        mock.chat([user("c")], GenerationConfig())


def test_mock_honours_stop_and_max_new_tokens():
    mock = MockTarget("echo")
    cut = mock.chat([user("one two three four")], GenerationConfig(max_new_tokens=2))[0]
    assert (cut.content, cut.finish_reason) == ("one two", "length")
    stopped = mock.chat([user("one. two")], GenerationConfig(stop=(".",)))[0]
    assert (stopped.content, stopped.finish_reason) == ("one", "stop")


def test_conversations_must_end_with_the_user():
    with pytest.raises(TargetError, match="end with a user message"):
        MockTarget().chat([[Message(role="assistant", content="hi")]], GenerationConfig())
