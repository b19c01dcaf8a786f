"""`breakfix serve` answers client mistakes as client errors and behaves like OpenAI's API at
its edges (auth scheme, unknown routes, streamed usage). Real HTTP on 127.0.0.1."""

import json

import httpx
import pytest

from breakfix.errors import BreakfixError
from breakfix.targets.mock import MockTarget
from breakfix.targets.server import ServerSettings, running
from breakfix.types import Reply

HELLO = {"messages": [{"role": "user", "content": "hello there"}]}


def post(url, body, **kw):
    return httpx.post(f"{url}/chat/completions", json=body, timeout=10, **kw)


def test_max_tokens_beyond_the_context_is_a_400_not_a_500():
    mock = MockTarget("echo")
    mock.context = 64
    with running(mock, ServerSettings(served_name="m")) as url:
        too_many = post(url, {**HELLO, "max_tokens": 8192})
        mock.enqueue(Reply(finish_reason="error", error="prompt of 31 tokens does not fit the context of 64"))
        long_prompt = post(url, {**HELLO, "max_tokens": 8})
        fine = post(url, {**HELLO, "max_tokens": 8})
    assert too_many.status_code == 400 and "context of 64" in too_many.json()["error"]["message"]
    assert too_many.json()["error"]["type"] == "context_length_exceeded"
    assert long_prompt.status_code == 400 and fine.status_code == 200
    assert len(mock.seen) == 2  # the impossible request never reached the model


def test_the_bearer_scheme_is_case_insensitive_and_the_key_must_match():
    with running(MockTarget("echo"), ServerSettings(served_name="m", api_key="k3y")) as url:
        codes = [post(url, HELLO, headers={"Authorization": header}).status_code
                 for header in ("bearer k3y", "BEARER  k3y", "Bearer k3y", "Bearer k3", "Basic k3y", "k3y")]
    assert codes == [200, 200, 200, 401, 401, 401]


def test_a_blank_key_is_refused_off_loopback():
    with pytest.raises(BreakfixError, match="without a key"):
        with running(MockTarget(), ServerSettings(served_name="m", api_key="   "), host="0.0.0.0"):
            pass


def test_unknown_routes_answer_openai_json():
    with running(MockTarget(), ServerSettings(served_name="m")) as url:
        missing = httpx.get(f"{url}/embeddings", timeout=10)
        wrong_method = httpx.get(f"{url}/chat/completions", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == 404
    assert wrong_method.status_code == 405 and "no such route" in wrong_method.json()["error"]["message"]


def test_stream_options_include_usage_sends_a_last_usage_chunk():
    with running(MockTarget("echo"), ServerSettings(served_name="m")) as url:
        plain = post(url, {**HELLO, "stream": True}).text
        counted = post(url, {**HELLO, "stream": True, "stream_options": {"include_usage": True}}).text
    events = [json.loads(line[6:]) for line in counted.splitlines() if line.startswith("data: {")]
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] == 2
    assert all("usage" not in json.loads(line[6:]) for line in plain.splitlines() if line.startswith("data: {"))
    assert counted.rstrip().endswith("data: [DONE]")
