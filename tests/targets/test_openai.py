"""The `openai` target against the real `breakfix serve` server on 127.0.0.1."""

import socket

import pytest

from breakfix.errors import TargetError
from breakfix.targets.mock import MockTarget
from breakfix.targets.openai import OpenAITarget
from breakfix.targets.server import ServerSettings, running
from breakfix.types import GenerationConfig, Message, user
from tests.stubs import stub

FAST = dict(retries=2, backoff_s=0.01)


def test_multi_turn_history_reaches_the_model():
    mock = MockTarget("echo")
    history = [Message(role="user", content="first"), Message(role="assistant", content="ok"),
               Message(role="user", content="second")]
    with running(mock, ServerSettings(served_name="m")) as url:
        reply = OpenAITarget("m", url).chat([history], GenerationConfig(system_prompt="sys"))[0]
    assert reply.ok and reply.content == "second"
    assert [m.content for m in mock.seen[0]] == ["sys", "first", "ok", "second"]
    assert reply.prompt_tokens is not None and reply.latency_s > 0


def test_many_conversations_run_concurrently_and_keep_their_order():
    mock = MockTarget("echo", delay_s=0.1)
    convs = [user(f"q{i}") for i in range(24)]
    with running(mock, ServerSettings(served_name="m", batch_wait_s=0.02)) as url:
        replies = OpenAITarget("m", url, concurrency=8).chat(convs, GenerationConfig())
    assert [r.content for r in replies] == [f"q{i}" for i in range(24)]
    assert max(mock.batches) > 1  # the concurrency reached the server's batcher


def test_a_500_is_retried_then_succeeds():
    mock = MockTarget("echo")
    mock.enqueue(RuntimeError("transient"))
    with running(mock, ServerSettings(served_name="m")) as url:
        reply = OpenAITarget("m", url, **FAST).chat([user("hi")], GenerationConfig())[0]
    assert reply.ok and reply.content == "hi"
    assert len(mock.seen) == 2


def test_a_timeout_is_retried_then_reported_as_an_errored_reply():
    mock = MockTarget("echo", delay_s=1.0)
    with running(mock, ServerSettings(served_name="m")) as url:
        target = OpenAITarget("m", url, timeout_s=0.2, retries=1, backoff_s=0.01)
        reply = target.chat([user("hi")], GenerationConfig())[0]
    assert not reply.ok and reply.finish_reason == "error"
    assert "timed out after 0.2 s (after 2 attempts)" in reply.error


def test_a_dead_endpoint_is_retried_then_reported():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    replies = OpenAITarget("m", f"http://127.0.0.1:{port}/v1", **FAST).chat([user("a"), user("b")], GenerationConfig())
    assert all(not r.ok and "ConnectError" in r.error and "3 attempts" in r.error for r in replies)


def test_a_wrong_key_fails_at_once():
    with running(MockTarget(), ServerSettings(served_name="m", api_key="right")) as url:
        with pytest.raises(TargetError, match="HTTP 401.*check the API key"):
            OpenAITarget("m", url, api_key="wrong").chat([user("x")], GenerationConfig())
        assert OpenAITarget("m", url, api_key="right").chat([user("x")], GenerationConfig())[0].ok


def test_key_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("MY_KEY", "right")
    with running(MockTarget(), ServerSettings(served_name="m", api_key="right")) as url:
        assert OpenAITarget("m", url, api_key_env="MY_KEY").chat([user("x")], GenerationConfig())[0].ok


def test_an_unknown_model_fails_at_once():
    with running(MockTarget(), ServerSettings(served_name="m")) as url:
        with pytest.raises(TargetError, match="HTTP 404"):
            OpenAITarget("nope", url).chat([user("x")], GenerationConfig())


def test_a_reply_that_is_not_json_is_a_clear_error():
    with stub(lambda body: (200, b"<html>a login page</html>", "text/html")) as (url, _):
        target = OpenAITarget("m", url)
        with pytest.raises(TargetError, match="not an OpenAI chat completion.*text/html"):
            target.chat([user("x")], GenerationConfig())


def test_generation_options_reach_the_server():
    mock = MockTarget("echo")
    config = GenerationConfig(max_new_tokens=2, stop=("!",))
    with running(mock, ServerSettings(served_name="m")) as url:
        reply = OpenAITarget("m", url).chat([user("one two three")], config)[0]
        stopped = OpenAITarget("m", url).chat([user("wow! more")], config)[0]
    assert (reply.content, reply.finish_reason) == ("one two", "length")
    assert stopped.content == "wow"


@pytest.mark.slow
def test_the_real_model_served_and_called_over_http(smol):
    with running(smol, ServerSettings(served_name="smollm2-135m")) as url:
        remote = OpenAITarget("smollm2-135m", url)
        replies = remote.chat([user("What is the capital of France?"), user("What is the capital of Germany?")],
                              GenerationConfig(max_new_tokens=24))
    assert "Paris" in replies[0].content and "Berlin" in replies[1].content
    local = smol.chat([user("What is the capital of France?")], GenerationConfig(max_new_tokens=24))[0]
    assert replies[0].content == local.content  # greedy over HTTP is the same as in-process
