"""The `openai` target against misbehaving servers on 127.0.0.1: trickling, silent, a 400 for one
prompt, and providers' content filters. Every test is bounded in time."""

import socket
import threading
import time

import pytest

from breakfix.errors import TargetError
from breakfix.targets import load_target
from breakfix.targets.base import is_blocked
from breakfix.targets.openai import OpenAITarget
from breakfix.types import GenerationConfig, user
from tests.stubs import stub


def raw_server(handle):
    """A TCP server on 127.0.0.1 whose connections run `handle(conn)` in threads; yields its URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    stop = threading.Event()

    def serve():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=handle, args=(conn, stop), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/v1", stop, listener


def trickle(conn, stop):
    """Headers at once, then one body byte every 0.2 s for ever: no single read ever times out."""
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
    while not stop.is_set():
        try:
            conn.sendall(b" ")
        except OSError:
            return
        time.sleep(0.2)
    conn.close()


def silent(conn, stop):
    conn.recv(65536)
    stop.wait(30)
    conn.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("handler", [trickle, silent])
def test_a_trickling_or_silent_server_costs_at_most_two_deadlines(handler):
    url, stop, listener = raw_server(handler)
    try:
        started = time.perf_counter()
        reply = OpenAITarget("m", url, timeout_s=1.0, retries=3, backoff_s=0.01).chat([user("x")], GenerationConfig())[0]
        took = time.perf_counter() - started
    finally:
        stop.set()
        listener.close()
    assert not reply.ok and "timed out after 1 s (after 2 attempts)" in reply.error
    assert took < 4  # two 1 s deadlines, not 4 x 60 s


def test_the_timeout_comes_from_the_environment_or_an_option(monkeypatch):
    monkeypatch.setenv("BREAKFIX_OPENAI_TIMEOUT", "7.5")
    assert load_target("openai:m@http://127.0.0.1:9/v1").timeout_s == 7.5
    assert load_target("openai:m@http://127.0.0.1:9/v1", timeout_s=3).timeout_s == 3.0
    monkeypatch.setenv("BREAKFIX_OPENAI_TIMEOUT", "soon")
    with pytest.raises(TargetError, match="BREAKFIX_OPENAI_TIMEOUT='soon'"):
        load_target("openai:m@http://127.0.0.1:9/v1")
    monkeypatch.delenv("BREAKFIX_OPENAI_TIMEOUT")
    assert load_target("openai:m@http://127.0.0.1:9/v1").timeout_s == 60.0


def _provider(body):
    """A provider that rejects one prompt (400), filters two (Azure's 400 and the
    `finish_reason: content_filter` form) and answers the rest."""
    prompt = body["messages"][-1]["content"]
    if prompt == "bad":
        return 400, {"error": {"message": "invalid 'messages'", "type": "invalid_request_error"}}
    if prompt == "azure":
        return 400, {"error": {"message": "filtered", "code": "content_filter", "status": 400}}
    if prompt == "filtered":
        return 200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": None},
                                  "finish_reason": "content_filter"}]}
    return 200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": prompt.upper()},
                              "finish_reason": "stop"}], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}


@pytest.fixture
def provider():
    with stub(_provider) as (url, _):
        yield url


@pytest.mark.timeout(30)
def test_one_400_does_not_throw_away_the_batch_and_filters_are_blocked(provider):
    prompts = ["one", "bad", "two", "azure", "filtered"]
    replies = OpenAITarget("m", provider, retries=1, backoff_s=0.01).chat([user(p) for p in prompts], GenerationConfig())
    assert [r.content for r in replies if r.ok] == ["ONE", "TWO"]
    assert not replies[1].ok and "HTTP 400 invalid 'messages'" in replies[1].error and not is_blocked(replies[1])
    assert is_blocked(replies[3]) and is_blocked(replies[4])
    assert all(r.content == "" and r.finish_reason != "stop" for r in replies[3:])  # never an empty "completed" reply
