"""The OpenAI-compatible server, exercised over real HTTP on 127.0.0.1."""

import json
import socket
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from breakfix.errors import BreakfixError
from breakfix.targets.mock import MockTarget
from breakfix.targets.server import ServerSettings, bind, running


def post(url, body, **kw):
    return httpx.post(f"{url}/chat/completions", json=body, timeout=10, **kw)


def test_models_and_a_plain_completion():
    with running(MockTarget("echo"), ServerSettings(served_name="m")) as url:
        assert httpx.get(f"{url}/models").json()["data"][0]["id"] == "m"
        body = post(url, {"model": "m", "messages": [{"role": "user", "content": "hello there"}]}).json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "hello there"}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == 2


def test_content_parts_and_developer_role_are_understood():
    mock = MockTarget("echo")
    with running(mock, ServerSettings(served_name="m")) as url:
        reply = post(url, {"messages": [{"role": "developer", "content": "sys"},
                                        {"role": "user", "content": [{"type": "text", "text": "a"},
                                                                     {"type": "text", "text": "b"}]}]})
    assert reply.json()["choices"][0]["message"]["content"] == "ab"
    assert [m.role for m in mock.seen[0]] == ["system", "user"]


def test_streaming_sends_chunks_that_add_up_to_the_reply():
    with running(MockTarget("echo"), ServerSettings(served_name="m")) as url:
        with httpx.stream("POST", f"{url}/chat/completions", timeout=10,
                          json={"messages": [{"role": "user", "content": "one two  three"}], "stream": True}) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "one two  three"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_concurrent_requests_are_batched():
    mock = MockTarget("echo", delay_s=0.2)
    with running(mock, ServerSettings(served_name="m", batch_wait_s=0.05)) as url:
        with ThreadPoolExecutor(12) as pool:
            replies = list(pool.map(lambda i: post(url, {"messages": [{"role": "user", "content": f"q{i}"}]}), range(12)))
    assert [r.json()["choices"][0]["message"]["content"] for r in replies] == [f"q{i}" for i in range(12)]
    assert sum(mock.batches) == 12
    assert max(mock.batches) > 1 and len(mock.batches) < 12


def test_different_generation_configs_are_not_mixed_in_one_call():
    mock = MockTarget("echo", delay_s=0.1)
    with running(mock, ServerSettings(served_name="m", batch_wait_s=0.05)) as url:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda t: post(url, {"messages": [{"role": "user", "content": "x"}], "max_tokens": t}),
                          [5, 5, 9, 9]))
    assert sum(mock.batches) == 4 and len(mock.batches) >= 2


@pytest.mark.parametrize("body, status, message", [
    ({"messages": []}, 400, "messages"),
    ({"messages": [{"role": "robot", "content": "x"}]}, 400, "invalid request"),
    ({"messages": [{"role": "user", "content": "x"}], "n": 3}, 400, "n"),
    ({"messages": [{"role": "assistant", "content": "x"}]}, 400, "last message"),
    ({"model": "other", "messages": [{"role": "user", "content": "x"}]}, 404, "not served here"),
])
def test_bad_requests_get_openai_style_errors(body, status, message):
    with running(MockTarget(), ServerSettings(served_name="m")) as url:
        reply = post(url, body)
    assert reply.status_code == status
    assert message in reply.json()["error"]["message"]


def test_body_that_is_not_json_or_too_large_is_refused():
    with running(MockTarget(), ServerSettings(served_name="m", max_body_bytes=2000)) as url:
        assert httpx.post(f"{url}/chat/completions", content=b"{nope", timeout=10).status_code == 400
        huge = {"messages": [{"role": "user", "content": "x" * 5000}]}
        reply = post(url, huge)
    assert reply.status_code == 413


def test_a_key_is_required_when_set():
    settings = ServerSettings(served_name="m", api_key="s3cret")
    body = {"messages": [{"role": "user", "content": "x"}]}
    with running(MockTarget(), settings) as url:
        assert post(url, body).status_code == 401
        assert post(url, body, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(f"{url}/models").status_code == 401
        assert post(url, body, headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_non_loopback_address_without_a_key_is_refused():
    with pytest.raises(BreakfixError, match="without a key"):
        with running(MockTarget(), ServerSettings(served_name="m"), host="0.0.0.0"):
            pass


def test_a_busy_port_is_one_clear_error():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        with pytest.raises(BreakfixError, match=f"cannot listen on 127.0.0.1:{port}"):
            bind("127.0.0.1", port)
    finally:
        holder.close()


def test_a_failing_target_is_a_500_and_the_server_keeps_serving():
    mock = MockTarget("echo")
    mock.enqueue(RuntimeError("kaboom"))
    with running(mock, ServerSettings(served_name="m")) as url:
        first = post(url, {"messages": [{"role": "user", "content": "x"}]})
        second = post(url, {"messages": [{"role": "user", "content": "y"}]})
    assert first.status_code == 500 and "kaboom" in first.json()["error"]["message"]
    assert second.json()["choices"][0]["message"]["content"] == "y"
