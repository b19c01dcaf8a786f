"""`breakfix serve`: an OpenAI-compatible server over any target.

So that garak, PyRIT or promptfoo can attack a breakfix checkpoint, and so that a second
breakfix can use this one as an `openai:` target. Concurrent requests are gathered for a few
milliseconds and answered as one batch (one `chat` call per distinct generation config); the
target is only ever called from one worker, so a local model is never run twice at once.

`stream: true` is answered in the server-sent-events format of the OpenAI API. The reply is
generated as part of a batch and then sent in word-sized chunks: clients see a valid stream,
but the first byte arrives when the batch is done.

A client that goes away costs nothing more than the batch already running: requests whose
client has disconnected are dropped before their generation starts, and at most `max_queue`
requests wait at once (the rest are told 429 with Retry-After), so a burst of impatient
clients cannot push everyone else's latency up without bound.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from breakfix.errors import BreakfixError
from breakfix.targets.base import Target, is_blocked
from breakfix.types import GenerationConfig, Message, Reply


class _Part(BaseModel):
    type: str = "text"
    text: str = ""


class _InMessage(BaseModel):
    role: str
    content: str | list[_Part] | None = None

    def to_message(self) -> Message:
        text = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content or [])
        role = "system" if self.role == "developer" else self.role  # OpenAI's newer name for it
        return Message(role=role, content=text)  # type: ignore[arg-type]


class _StreamOptions(BaseModel):
    include_usage: bool = False


class ChatRequest(BaseModel):
    """The subset of the OpenAI chat-completions request that a local model can honour."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = None
    messages: list[_InMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: _StreamOptions | None = None
    n: int = Field(1, ge=1, le=1)


@dataclass
class ServerSettings:
    served_name: str
    api_key: str | None = None
    max_body_bytes: int = 1 << 20
    max_batch: int = 32
    batch_wait_s: float = 0.01
    default_max_tokens: int = 256
    default_temperature: float = 0.0
    max_queue: int = 64
    poll_s: float = 0.05  # how often a waiting request checks that its client is still there


class QueueFull(Exception):
    """More than `max_queue` requests are already waiting."""


class ClientGone(Exception):
    """The client disconnected before its reply was ready."""


async def _still_here() -> bool:
    return False


@dataclass
class _Item:
    messages: list[Message]
    config: GenerationConfig
    done: asyncio.Future
    gone: Callable[[], Awaitable[bool]] = _still_here


@dataclass
class _Batcher:
    """Gathers concurrent requests and answers them with as few `chat` calls as possible."""

    target: Target
    settings: ServerSettings
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    calls: list[int] = field(default_factory=list)
    dropped: int = 0  # requests whose client left before generation started
    waiting: int = 0  # submitted and not yet answered

    async def submit(self, messages: list[Message], config: GenerationConfig,
                     gone: Callable[[], Awaitable[bool]] = _still_here) -> Reply:
        """The reply; QueueFull when too many wait, ClientGone when `gone()` turns true first."""
        if self.waiting >= self.settings.max_queue:
            raise QueueFull
        done = asyncio.get_running_loop().create_future()
        self.waiting += 1
        try:
            await self.queue.put(_Item(messages, config, done, gone))
            while True:
                try:
                    return await asyncio.wait_for(asyncio.shield(done), self.settings.poll_s)
                except TimeoutError:
                    if await gone():
                        done.cancel()  # the worker skips it if it has not started
                        raise ClientGone from None
                except asyncio.CancelledError:
                    if done.cancelled():  # the worker found the client gone first
                        raise ClientGone from None
                    raise
        finally:
            self.waiting -= 1

    async def work(self) -> None:
        while True:
            items = [await self.queue.get()]
            deadline = time.monotonic() + self.settings.batch_wait_s
            while len(items) < self.settings.max_batch:
                try:
                    items.append(await asyncio.wait_for(self.queue.get(), max(0.0, deadline - time.monotonic())))
                except TimeoutError:
                    break
            by_config: dict[GenerationConfig, list[_Item]] = {}
            for item in items:
                by_config.setdefault(item.config, []).append(item)
            for config, group in by_config.items():
                live = await self._live(group)  # checked per group: earlier groups take time
                if live:
                    await self._answer(config, live)

    async def _live(self, group: list[_Item]) -> list[_Item]:
        """The items whose client is still waiting; the others are dropped unanswered."""
        live = []
        for item in group:
            if item.done.done() or await item.gone():
                item.done.cancel()
                self.dropped += 1
            else:
                live.append(item)
        return live

    async def _answer(self, config: GenerationConfig, group: list[_Item]) -> None:
        self.calls.append(len(group))
        try:
            replies = await asyncio.to_thread(self.target.chat, [g.messages for g in group], config)
        except Exception as exc:  # every waiting request learns why, the server keeps going
            for item in group:
                if not item.done.done():
                    item.done.set_exception(exc)
            return
        for item, reply in zip(group, replies):
            if not item.done.done():
                item.done.set_result(reply)


def _error(status: int, message: str, kind: str = "invalid_request_error",
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status,
                        headers=headers)


def create_app(target: Target, settings: ServerSettings) -> Starlette:
    batcher = _Batcher(target, settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        worker = asyncio.create_task(batcher.work())
        yield
        worker.cancel()

    def authorised(request: Request) -> bool:
        if settings.api_key is None:
            return True
        scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
        # The scheme is case-insensitive (RFC 7235); the key is compared in constant time.
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), settings.api_key.encode())

    async def models(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "missing or wrong bearer key", "authentication_error")
        card = {"id": settings.served_name, "object": "model", "created": 0, "owned_by": "breakfix"}
        return JSONResponse({"object": "list", "data": [card]})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "model": settings.served_name})

    async def completions(request: Request) -> Response:
        if not authorised(request):
            return _error(401, "missing or wrong bearer key", "authentication_error")
        parsed = await _parse(request, settings)
        if isinstance(parsed, Response):
            return parsed
        messages, config, stream, usage = parsed
        context = getattr(target, "context", None)
        if isinstance(context, int) and config.max_new_tokens >= context:
            return _error(400, f"max_tokens {config.max_new_tokens} does not fit the model's context of {context} "
                               "tokens; ask for fewer", "context_length_exceeded")
        try:
            reply = await batcher.submit(messages, config, request.is_disconnected)
        except QueueFull:
            return _error(429, f"{settings.max_queue} requests are already waiting; retry shortly",
                          "rate_limit_error", {"Retry-After": "1"})
        except ClientGone:
            return Response(status_code=499)  # nobody reads it; nginx's code for "client closed request"
        except BreakfixError as exc:
            return _error(502, str(exc), "server_error")
        except Exception as exc:
            return _error(500, f"{type(exc).__name__}: {exc}", "server_error")
        if reply.error and "does not fit the context" in reply.error:  # the request was too long: a client error
            return _error(400, reply.error, "context_length_exceeded")
        if is_blocked(reply):  # as OpenAI-compatible servers say it: no content, finish "content_filter"
            reply = Reply(finish_reason="blocked", prompt_tokens=reply.prompt_tokens)
        elif reply.error:
            return _error(500, reply.error, "server_error")
        if stream:
            return StreamingResponse(_sse(reply, settings.served_name, usage), media_type="text/event-stream")
        return JSONResponse(_completion(reply, settings.served_name))

    async def not_found(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        return _error(status, f"{request.method} {request.url.path}: no such route; this server has "
                              "/v1/chat/completions, /v1/models and /health", "not_found_error")

    app = Starlette(
        exception_handlers={404: not_found, 405: not_found},
        routes=[
            Route("/v1/models", models),
            Route("/v1/chat/completions", completions, methods=["POST"]),
            Route("/health", health),
        ],
        lifespan=lifespan,
    )
    app.state.batcher = batcher
    return app


async def _parse(request: Request, settings: ServerSettings) -> tuple[list[Message], GenerationConfig, bool, bool] | Response:
    """The messages, generation config, stream flag and whether to stream usage, or the error response."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.max_body_bytes:
        return _error(413, f"request body over {settings.max_body_bytes} bytes")
    body = await request.body()
    if len(body) > settings.max_body_bytes:
        return _error(413, f"request body over {settings.max_body_bytes} bytes")
    try:
        req = ChatRequest.model_validate_json(body)
        messages = [m.to_message() for m in req.messages]
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return _error(400, f"invalid request: {where}: {first['msg']}" if where else f"invalid request: {first['msg']}")
    if req.model not in (None, settings.served_name):
        return _error(404, f"model {req.model!r} is not served here; this server has {settings.served_name!r}")
    if messages[-1].role != "user":
        return _error(400, "the last message must come from the user")
    usage = bool(req.stream_options and req.stream_options.include_usage)
    return messages, _config(req, settings), req.stream, usage


def _config(req: ChatRequest, settings: ServerSettings) -> GenerationConfig:
    stop = [req.stop] if isinstance(req.stop, str) else (req.stop or [])
    return GenerationConfig(
        max_new_tokens=req.max_completion_tokens or req.max_tokens or settings.default_max_tokens,
        temperature=settings.default_temperature if req.temperature is None else req.temperature,
        top_p=req.top_p or 1.0,
        seed=req.seed or 0,
        stop=tuple(stop),
    )


_FINISH = {"blocked": "content_filter"}  # OpenAI's name for a reply its filter withheld


def _completion(reply: Reply, model: str) -> dict[str, Any]:
    prompt, completion = reply.prompt_tokens or 0, reply.completion_tokens or 0
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.content or None if
                                             reply.finish_reason == "blocked" else reply.content},
                     "finish_reason": _FINISH.get(reply.finish_reason, reply.finish_reason)}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }


def _sse(reply: Reply, model: str, usage: bool = False) -> Iterator[str]:
    head = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model}

    def chunk(delta: dict[str, str], finish: str | None = None) -> str:
        body = {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant"})
    for piece in re.findall(r"\s*\S+", reply.content):
        yield chunk({"content": piece})
    yield chunk({}, _FINISH.get(reply.finish_reason, reply.finish_reason))
    if usage:  # as OpenAI does for stream_options.include_usage: a last chunk with no choices
        prompt, completion = reply.prompt_tokens or 0, reply.completion_tokens or 0
        counts = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        yield f"data: {json.dumps({**head, 'choices': [], 'usage': counts})}\n\n"
    yield "data: [DONE]\n\n"


# --- running it ---------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """Bind before starting uvicorn, so a busy port is one clear error, not a log line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise BreakfixError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    return sock


def _check_key(settings: ServerSettings, host: str) -> None:
    if not is_loopback(host) and not (settings.api_key or "").strip():
        raise BreakfixError(f"refusing to serve on {host} without a key: pass --api-key or set BREAKFIX_SERVER_KEY")


def _server(target: Target, settings: ServerSettings):
    import uvicorn

    config = uvicorn.Config(create_app(target, settings), log_level="warning", lifespan="on")
    return uvicorn.Server(config)


def serve(make_target: Callable[[], Target], settings: ServerSettings, host: str, port: int) -> None:
    """Serve until interrupted. The key and the port are checked before the model is loaded,
    so a mistake there costs nothing."""
    _check_key(settings, host)
    sock = bind(host, port)
    _server(make_target(), settings).run(sockets=[sock])


@contextmanager
def running(target: Target, settings: ServerSettings, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve in a background thread; yields the `/v1` base URL. For tests and embedding."""
    _check_key(settings, host)
    server = _server(target, settings)
    sock = bind(host, port)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise BreakfixError("the server failed to start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
