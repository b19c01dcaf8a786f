"""`breakfix serve` drops requests whose client went away and bounds its queue, and the
official `openai` client talks to it. Real HTTP on 127.0.0.1, bounded in time."""

import threading
import time

import httpx
import pytest

from breakfix.targets.mock import MockTarget
from breakfix.targets.server import ServerSettings, running


def ask(url, seed, timeout=10.0):
    body = {"messages": [{"role": "user", "content": f"hello {seed}"}], "seed": seed}
    return httpx.post(f"{url}/chat/completions", json=body, timeout=timeout)


def impatient(url, seed):
    try:
        ask(url, seed, timeout=0.5)
    except httpx.TimeoutException:
        pass


def test_clients_that_gave_up_do_not_delay_the_next_request():
    # Distinct seeds make distinct generation configs: one 0.4 s model call each, as with a
    # real model answering six different requests in turn.
    mock = MockTarget("echo", delay_s=0.4)
    with running(mock, ServerSettings(served_name="m", poll_s=0.02)) as url:
        quitters = [threading.Thread(target=impatient, args=(url, seed)) for seed in range(1, 7)]
        for t in quitters:
            t.start()
        for t in quitters:
            t.join()
        started = time.monotonic()
        reply = ask(url, 99)
        latency = time.monotonic() - started
    assert reply.status_code == 200
    # Before: the five or six abandoned generations ran first (~2 s). Now only the one
    # already started when its client left is waited for.
    assert latency < 1.0, latency
    assert sum(mock.batches) <= 3  # at most the ones started before 0.5 s, plus ours


def test_a_full_queue_answers_429_with_retry_after():
    mock = MockTarget("echo", delay_s=0.5)
    results = {}
    with running(mock, ServerSettings(served_name="m", max_queue=2)) as url:
        first = [threading.Thread(target=lambda s=s: results.setdefault(s, ask(url, s))) for s in (1, 2)]
        for t in first:
            t.start()
        time.sleep(0.2)  # both are waiting now
        refused = ask(url, 3)
        for t in first:
            t.join()
        later = ask(url, 4)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert all(r.status_code == 200 for r in results.values()) and later.status_code == 200


def test_the_official_openai_client_plain_and_streaming():
    openai = pytest.importorskip("openai")
    with running(MockTarget("echo"), ServerSettings(served_name="m", api_key="k")) as url:
        client = openai.OpenAI(base_url=url, api_key="k", max_retries=0, timeout=10)
        plain = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "two words"}])
        stream = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "three little words"}],
                                                stream=True, stream_options={"include_usage": True})
        chunks = list(stream)
        models = [m.id for m in client.models.list()]
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=url, api_key="wrong", max_retries=0).chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}])
    assert plain.choices[0].message.content == "two words" and plain.choices[0].finish_reason == "stop"
    assert plain.usage.total_tokens > 0
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "three little words"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == 3
    assert models == ["m"]


def test_a_blocked_reply_is_served_as_openais_content_filter():
    from breakfix.targets.base import blocked, is_blocked
    from breakfix.targets.openai import OpenAITarget  # noqa: F401  (registers the scheme)
    from breakfix.targets.base import load_target
    from breakfix.types import GenerationConfig, Message

    mock = MockTarget("echo")
    mock.enqueue(blocked("upstream filter"))
    with running(mock, ServerSettings(served_name="m")) as url:
        raw = ask(url, 1).json()
        mock.enqueue(blocked("upstream filter"))
        again = load_target(f"openai:m@{url}").chat([[Message(role="user", content="x")]], GenerationConfig())[0]
    assert raw["choices"][0]["finish_reason"] == "content_filter"
    assert raw["choices"][0]["message"]["content"] is None
    assert is_blocked(again) and again.finish_reason == "blocked"
