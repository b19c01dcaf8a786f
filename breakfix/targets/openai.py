"""Any OpenAI-compatible `/v1/chat/completions` endpoint: vLLM, Ollama, llama.cpp, hosted APIs,
or another breakfix's `breakfix serve`.

Requests run concurrently (bounded), time out, and are retried with exponential backoff on
429, 5xx, timeouts and connection errors. What cannot get better by retrying (a bad key, an
unknown model or URL, a reply that is not JSON) raises `TargetError` at once. A request that
still fails after its retries comes back as a `Reply` with `error` set, so one bad request does
not throw away the rest of a batch.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections.abc import Coroutine, Sequence
from typing import Any

import httpx

from breakfix.errors import TargetError
from breakfix.targets.base import check_conversation, register_target, with_system
from breakfix.types import Conversation, GenerationConfig, Reply

_RETRYABLE = {408, 409, 425, 429, 500, 502, 503, 504}


class _Retry(Exception):
    def __init__(self, reason: str, wait_s: float | None = None):
        super().__init__(reason)
        self.wait_s = wait_s


class OpenAITarget:
    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        name: str | None = None,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout_s: float = 60.0,
        retries: int = 3,
        backoff_s: float = 0.5,
    ):
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.name = name or f"openai:{model}@{self.base_url}"
        self.api_key = api_key if api_key is not None else os.environ.get(api_key_env)
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        # The remote weights cannot be hashed from here: the endpoint and model name stand for them.
        self.fingerprint = f"openai:{model}@{self.base_url}"

    def chat(self, conversations: Sequence[Conversation], config: GenerationConfig) -> list[Reply]:
        for conv in conversations:
            check_conversation(conv)
        return _run(self._chat_all(conversations, config))

    async def _chat_all(self, conversations: Sequence[Conversation], config: GenerationConfig) -> list[Reply]:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        limit = asyncio.Semaphore(self.concurrency)
        async with httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=self.timeout_s) as client:

            async def one(conv: Conversation) -> Reply:
                async with limit:
                    return await self._with_retries(client, self._payload(conv, config))

            return list(await asyncio.gather(*(one(c) for c in conversations)))

    def _payload(self, conversation: Conversation, config: GenerationConfig) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [m.model_dump() for m in with_system(conversation, config)],
            "max_tokens": config.max_new_tokens,
            "temperature": config.temperature,
            "seed": config.seed,
        }
        if config.top_p < 1.0:
            payload["top_p"] = config.top_p
        if config.stop:
            payload["stop"] = list(config.stop)
        return payload

    async def _with_retries(self, client: httpx.AsyncClient, payload: dict[str, Any]) -> Reply:
        started = time.perf_counter()
        reason = ""
        for attempt in range(self.retries + 1):
            try:
                reply = await self._post(client, payload)
                reply.latency_s = time.perf_counter() - started
                return reply
            except _Retry as retry:
                reason = str(retry)
                if attempt < self.retries:
                    wait = retry.wait_s or self.backoff_s * 2**attempt * (1 + random.random() / 2)
                    await asyncio.sleep(min(wait, 30.0))
        return Reply(finish_reason="error", latency_s=time.perf_counter() - started,
                     error=f"{reason} (after {self.retries + 1} attempts)")

    async def _post(self, client: httpx.AsyncClient, payload: dict[str, Any]) -> Reply:
        url = f"{self.base_url}/chat/completions"
        try:
            response = await client.post("/chat/completions", json=payload)
        except httpx.TimeoutException:
            raise _Retry(f"{url}: timed out after {self.timeout_s:g} s") from None
        except httpx.TransportError as exc:
            raise _Retry(f"{url}: {type(exc).__name__} ({exc or 'connection failed'})") from None
        if response.status_code in _RETRYABLE:
            raise _Retry(f"{url}: HTTP {response.status_code} {_error_text(response)}", _retry_after(response))
        if response.status_code in (401, 403):
            raise TargetError(f"{url}: HTTP {response.status_code} {_error_text(response)} (check the API key)")
        if response.status_code >= 400:
            raise TargetError(f"{url}: HTTP {response.status_code} {_error_text(response)}")
        try:
            body = response.json()
            choice = body["choices"][0]
            content = choice["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            kind = response.headers.get("content-type", "unknown type")
            raise TargetError(f"{url}: the reply is not an OpenAI chat completion ({kind}); "
                              "is this the /v1 URL of an OpenAI-compatible server?") from None
        usage = body.get("usage") or {}
        finish = "length" if choice.get("finish_reason") == "length" else "stop"
        return Reply(content=content, finish_reason=finish,
                     prompt_tokens=usage.get("prompt_tokens"), completion_tokens=usage.get("completion_tokens"))


def _error_text(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])[:200]
    except (ValueError, KeyError, TypeError):
        return response.reason_phrase or response.text[:200]


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def _run(coro: Coroutine[Any, Any, list[Reply]]) -> list[Reply]:
    """Run a coroutine to completion from sync code, even when a loop is already running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: list[list[Reply]] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


@register_target("openai")
def _factory(rest: str, **options: Any) -> OpenAITarget:
    model, sep, url = rest.partition("@")
    url = url if sep else os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1")
    if not model or not url.startswith(("http://", "https://")):
        raise TargetError(f"openai:{rest}: expected openai:MODEL@http(s)://HOST[:PORT]/v1")
    return OpenAITarget(model, url, **options)
