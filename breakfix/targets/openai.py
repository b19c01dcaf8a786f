"""Any OpenAI-compatible `/v1/chat/completions` endpoint: vLLM, Ollama, llama.cpp, hosted APIs,
or another breakfix's `breakfix serve`.

Requests run concurrently (bounded) and are retried with exponential backoff on 429, 5xx,
timeouts and connection errors. Each attempt has an overall deadline (`timeout_s`, default 60 s
or `BREAKFIX_OPENAI_TIMEOUT`), so a server that trickles bytes cannot hang a run; a timeout is
retried once only, since a silent server tends to stay silent. What cannot get better by
retrying and concerns every request (a bad key, an unknown model or URL, a reply that is not
JSON) raises `TargetError` at once. A request that fails on its own (a 400 for this prompt, or
still failing after its retries) comes back as a `Reply` with `error` set, so one bad request
does not throw away the rest of a batch. A provider's content filter (Azure's 400
`content_filter`, or `finish_reason: content_filter`) comes back as a blocked reply (see
`targets.base.blocked`): the platform refused, not the model.

Each endpoint can have its own key: `openai:MODEL@URL#key=VAR` reads the key from the
environment variable VAR instead of `OPENAI_API_KEY` (so a third-party target and an OpenAI
judge never share one). A server that refuses `max_tokens` (OpenAI's newer models answer 400
and ask for `max_completion_tokens`) is asked again once with `max_completion_tokens`, which
is then used from that point on.

`optional_body` adds request fields not every server knows (`response_format`, `logprobs`): a
request that gets a 400 with them is sent again without them, and once that works they are
left out from then on. `chat_choices` also returns each raw choice (its logprobs) and accepts a
conversation that ends with the reply to classify, as guard models' chat templates expect.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import threading
import time
from collections.abc import Coroutine, Sequence
from typing import Any

import httpx

from breakfix.errors import TargetError
from breakfix.targets.base import blocked, check_conversation, register_target, with_system
from breakfix.types import Conversation, GenerationConfig, Reply

_RETRYABLE = {408, 409, 425, 429, 500, 502, 503, 504}
TIMEOUT_ENV = "BREAKFIX_OPENAI_TIMEOUT"


class _Retry(Exception):
    def __init__(self, reason: str, wait_s: float | None = None, timed_out: bool = False):
        super().__init__(reason)
        self.wait_s = wait_s
        self.timed_out = timed_out


def default_timeout() -> float:
    """Seconds one request may take in all: `BREAKFIX_OPENAI_TIMEOUT`, else 60."""
    raw = os.environ.get(TIMEOUT_ENV)
    if raw is None or not raw.strip():
        return 60.0
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise TargetError(f"{TIMEOUT_ENV}={raw!r}: expected a number of seconds above 0")
    return value


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
        timeout_s: float | None = None,
        retries: int = 3,
        backoff_s: float = 0.5,
        optional_body: dict[str, Any] | None = None,
    ):
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.name = name or f"openai:{model}@{self.base_url}"
        self.api_key = api_key if api_key is not None else os.environ.get(api_key_env)
        self.concurrency = concurrency
        self.timeout_s = float(timeout_s) if timeout_s is not None else default_timeout()
        self.retries = retries
        self.backoff_s = backoff_s
        self.optional_body = dict(optional_body or {})
        self.max_field = "max_tokens"  # becomes "max_completion_tokens" once a server asks for it
        # The remote weights cannot be hashed from here: the endpoint and model name stand for them.
        self.fingerprint = f"openai:{model}@{self.base_url}"

    def chat(self, conversations: Sequence[Conversation], config: GenerationConfig) -> list[Reply]:
        for conv in conversations:
            check_conversation(conv)
        return [reply for reply, _ in _run(self._chat_all(conversations, config))]

    def chat_choices(self, conversations: Sequence[Conversation], config: GenerationConfig) -> list[tuple[Reply, dict]]:
        """Each reply with its raw choice (`{}` when the request failed), for classifiers served
        behind chat completions: the choice carries `logprobs` when asked for, and a conversation
        may end with an assistant turn (Llama Guard's template judges the last turn)."""
        if any(not conv for conv in conversations):
            raise TargetError("a conversation needs at least one message")
        return _run(self._chat_all(conversations, config))

    async def _chat_all(self, conversations: Sequence[Conversation], config: GenerationConfig) -> list[tuple[Reply, dict]]:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        limit = asyncio.Semaphore(self.concurrency)
        async with httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=self.timeout_s) as client:

            async def one(conv: Conversation) -> tuple[Reply, dict]:
                async with limit:
                    return await self._with_retries(client, self._payload(conv, config))

            return list(await asyncio.gather(*(one(c) for c in conversations)))

    def _payload(self, conversation: Conversation, config: GenerationConfig) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [m.model_dump() for m in with_system(conversation, config)],
            self.max_field: config.max_new_tokens,
            "temperature": config.temperature,
            "seed": config.seed,
        }
        if config.top_p < 1.0:
            payload["top_p"] = config.top_p
        if config.stop:
            payload["stop"] = list(config.stop)
        return {**self.optional_body, **payload}

    async def _with_retries(self, client: httpx.AsyncClient, payload: dict[str, Any]) -> tuple[Reply, dict]:
        started = time.perf_counter()
        reason, timeouts, attempts = "", 0, 0
        for attempt in range(self.retries + 1):
            attempts += 1
            try:
                reply, choice = await self._post(client, payload)
                reply.latency_s = time.perf_counter() - started
                return reply, choice
            except _Retry as retry:
                reason = str(retry)
                timeouts += retry.timed_out
                if attempt < self.retries and timeouts < 2:
                    wait = retry.wait_s or self.backoff_s * 2**attempt * (1 + random.random() / 2)
                    await asyncio.sleep(min(wait, 30.0))
                else:
                    break
        return Reply(finish_reason="error", latency_s=time.perf_counter() - started,
                     error=f"{reason} (after {attempts} attempts)"), {}

    async def _post(self, client: httpx.AsyncClient, payload: dict[str, Any]) -> tuple[Reply, dict]:
        url = f"{self.base_url}/chat/completions"
        try:
            # httpx's timeout is per read; the overall deadline stops a server trickling bytes.
            response = await asyncio.wait_for(client.post("/chat/completions", json=payload), self.timeout_s)
        except (httpx.TimeoutException, TimeoutError):
            raise _Retry(f"{url}: timed out after {self.timeout_s:g} s", timed_out=True) from None
        except httpx.TransportError as exc:
            raise _Retry(f"{url}: {type(exc).__name__} ({exc or 'connection failed'})") from None
        if response.status_code in _RETRYABLE:
            raise _Retry(f"{url}: HTTP {response.status_code} {_error_text(response)}", _retry_after(response))
        if response.status_code in (401, 403):
            raise TargetError(f"{url}: HTTP {response.status_code} {_error_text(response)} (check the API key)")
        if response.status_code in (404, 405):
            raise TargetError(f"{url}: HTTP {response.status_code} {_error_text(response)} (check the model and URL)")
        if response.status_code == 400 and "max_tokens" in payload and "max_tokens" in _error_text(response):
            retried = {("max_completion_tokens" if k == "max_tokens" else k): v for k, v in payload.items()}
            reply, choice = await self._post(client, retried)
            if reply.ok:  # this server wants the newer name: use it from now on
                self.max_field = "max_completion_tokens"
            return reply, choice
        if response.status_code == 400 and (optional := [k for k in self.optional_body if k in payload]):
            reply, choice = await self._post(client, {k: v for k, v in payload.items() if k not in optional})
            if reply.ok:  # the fields were the trouble, not this prompt: stop sending them
                self.optional_body = {}
            return reply, choice
        if response.status_code >= 400:  # about this request only: the rest of the batch goes on
            text = f"HTTP {response.status_code} {_error_text(response)}"
            if _content_filtered(response):
                return blocked(text), {}
            return Reply(finish_reason="error", error=f"{url}: {text}"), {}
        try:
            body = response.json()
            choice = body["choices"][0]
            content = choice["message"].get("content")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            kind = response.headers.get("content-type", "unknown type")
            raise TargetError(f"{url}: the reply is not an OpenAI chat completion ({kind}); "
                              "is this the /v1 URL of an OpenAI-compatible server?") from None
        if choice.get("finish_reason") == "content_filter":
            return blocked(f"finish_reason content_filter{' (partial reply dropped)' if content else ''}"), {}
        usage = body.get("usage") or {}
        finish = "length" if choice.get("finish_reason") == "length" else "stop"
        return Reply(content=content or "", finish_reason=finish, prompt_tokens=usage.get("prompt_tokens"),
                     completion_tokens=usage.get("completion_tokens")), choice


def _content_filtered(response: httpx.Response) -> bool:
    """Azure OpenAI answers a filtered prompt with 400 and `error.code` "content_filter"."""
    try:
        error = response.json()["error"]
        return "content_filter" in (str(error.get("code")), str(error.get("type")), str(error.get("innererror", {}).get("code")))
    except (ValueError, KeyError, TypeError, AttributeError):
        return "content_filter" in response.text[:2000]


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


def _run(coro: Coroutine[Any, Any, list[tuple[Reply, dict]]]) -> list[tuple[Reply, dict]]:
    """Run a coroutine to completion from sync code, even when a loop is already running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: list[list[tuple[Reply, dict]]] = []
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
    rest, _, fragment = rest.partition("#")
    for part in filter(None, fragment.split(",")):
        name, eq, value = part.partition("=")
        if name.strip() != "key" or not eq or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value.strip()):
            raise TargetError(f"openai:{rest}#{fragment}: after '#' write key=ENV_VAR (the variable holding this "
                              "endpoint's key)")
        if not os.environ.get(value.strip()):
            raise TargetError(f"openai:{rest}: the key variable {value.strip()} is not set")
        options.setdefault("api_key_env", value.strip())
    model, sep, url = rest.partition("@")
    url = url if sep else os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1")
    if not model or not url.startswith(("http://", "https://")):
        raise TargetError(f"openai:{rest}: expected openai:MODEL@http(s)://HOST[:PORT]/v1")
    return OpenAITarget(model, url, **options)
