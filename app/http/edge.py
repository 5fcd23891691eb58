"""The ASGI edge, the outermost layer, once per request: its id, the body-size limit, its
share of memory, its metrics and its log line; then the dispatcher (every POST route), then the
FastAPI app (the rest).

One pure-ASGI layer does all of that, rather than a stack of middleware each wrapping `send`
and `receive` again: with one sentence per request, that wrapping is a large share of the
server's work.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time

from fastapi import FastAPI
from prometheus_client.metrics import Counter, Histogram
from starlette.datastructures import State
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import logs
from app.config import Settings
from app.core.admission import MemoryBudget, request_cost
from app.core.errors import InputTooLargeError, ServiceError
from app.http.dispatcher import MODEL_KEY, Dispatcher, model_path
from app.http.errors import error_response, service_error_response
from app.http.routes import ROUTES
from app.metrics import Metrics

log = logging.getLogger(__name__)  # one line per request

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_LABELS = frozenset(route.path for route in ROUTES)  # any other path is "other"
_BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})  # no memory held for these


class RequestIds:
    """Ids unique across processes and restarts: a random prefix per process and a counter,
    cheaper per request than a uuid4."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}-{next(self._counter):x}"


class Edge:
    """X-Request-ID in (if sane) and out, the body limit (413 before anything parses it), one
    log line and the request metrics per request; an unexpected exception becomes a logged 500
    in the usual error body."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        max_body_bytes: int,
        state: State,
        memory: MemoryBudget,
    ) -> None:
        self.app = app
        self.state = state  # the app's settings, metrics and engine, for tests and tools
        self.max_body_bytes = max_body_bytes
        self.memory = memory
        self.ids = RequestIds()
        self._count: dict[tuple[str, int, str], Counter] = {}
        self._seconds: dict[tuple[str, str], Histogram] = {}
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        rid = given if given is not None and _REQUEST_ID.fullmatch(given) else self.ids.next()
        token = logs.request_id.set(rid)
        status = 500
        started = False
        rid_header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started, status = True, message["status"]
                message = {**message, "headers": [*message.get("headers", []), rid_header]}
            await send(message)

        start = time.perf_counter()
        try:
            await self._limited(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error")
            if started:
                raise
            message = f"internal error, request id {rid}"
            await error_response(scope["path"], "internal", message)(scope, receive, send_with_id)
        finally:
            self._record(scope, status, time.perf_counter() - start)
            logs.request_id.reset(token)

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app, with the body held to its limit and the request to its share of memory: a
        declared Content-Length is checked up front (the server holds the body to it); a body
        of unknown length is read up to the limit before the app sees it. A request with a body
        holds its share of the process's memory (app.core.admission) from before its body is
        read until it is answered; one that cannot have it is answered 429 or 413 and its body
        never read."""
        size = _content_length(scope)
        bodiless = scope["method"] in _BODILESS or size == 0
        cost = 0 if bodiless else request_cost(self.max_body_bytes if size is None else size)
        try:
            if size is not None:
                self._check_size(size)
            if cost:
                await self.memory.acquire(cost)
        except ServiceError as e:
            await service_error_response(scope["path"], e)(scope, receive, send)
            return
        try:
            await self._read_within_limit(scope, receive, send, size)
        finally:
            if cost:
                self.memory.release(cost)

    async def _read_within_limit(
        self, scope: Scope, receive: Receive, send: Send, size: int | None
    ) -> None:
        if size is None:
            try:
                receive = await self._buffered(receive)
            except ServiceError as e:
                await service_error_response(scope["path"], e)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _buffered(self, receive: Receive) -> Receive:
        """A body of unknown length, read whole (refused once past the limit), then replayed."""
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            self._check_size(size)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        return replay

    def _check_size(self, size: int) -> None:
        """The body limit, checked here only: on a declared length, and on a body of unknown
        length as it is read."""
        if size > self.max_body_bytes:
            raise InputTooLargeError(f"request body larger than {self.max_body_bytes} bytes")

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        path = model_path(scope["path"])[1]
        route = path if path in _LABELS else "other"
        model = scope.get(MODEL_KEY, "")  # "" until a model is chosen: GETs, early errors
        count = self._count.get((route, status, model))
        if count is None:
            count = self.metrics.requests.labels(route, str(status), model)
            self._count[route, status, model] = count
        count.inc()
        histogram = self._seconds.get((route, model))
        if histogram is None:
            histogram = self.metrics.request_seconds.labels(route, model)
            self._seconds[route, model] = histogram
        histogram.observe(seconds)
        log.info("%s %s %d %.1fms", scope["method"], scope["path"], status, seconds * 1000)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _content_length(scope: Scope) -> int | None:
    """The declared length of the body; None: not declared (chunked), or not a number."""
    declared = _header(scope, b"content-length")
    return int(declared) if declared is not None and declared.isdigit() else None


def build(fastapi_app: FastAPI, settings: Settings, metrics: Metrics, memory: MemoryBudget) -> Edge:
    """Edge -> CORS (when origins are set) -> dispatcher -> the FastAPI app."""
    inner: ASGIApp = Dispatcher(fastapi_app, lambda: fastapi_app.state.models, settings.api_key)
    if settings.cors_origins:
        inner = CORSMiddleware(
            inner,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID"],
        )
    return Edge(inner, metrics, settings.max_body_bytes, fastapi_app.state, memory)
