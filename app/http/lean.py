"""The lean path: the table's `lean` routes (POST /tag, /embed and /embed's TEI paths) on raw
ASGI, body bytes -> pydantic-core -> handler -> orjson bytes.

Most callers send one sentence per request, so what a request costs outside the model matters
as much as the model. This path skips FastAPI's routing, dependency solving and response
validation, yet answers exactly as the documented routes do: the same request models validate
the body, the same handlers write the answer after the same auth and readiness checks, the same
error bodies come back. A body that is not sent as JSON is left to the documented routes, whose
answer to it is a 422.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.engine import Engine
from app.core.errors import ServiceError
from app.http.connection import Stream
from app.http.errors import error_response, service_error_response, validation_message
from app.http.handlers import authorize, ready
from app.http.routes import ROUTES, Route

_JSON_HEADERS = [(b"content-type", b"application/json")]
_MISSING = InitErrorDetails(type="missing", loc=(), input=b"")


class _Lean:
    """A lean route: its method, body model and handler, read once from the table."""

    def __init__(self, route: Route) -> None:
        self.method = route.method
        self.guarded = route.guarded
        self.handler: Callable[..., Awaitable[bytes | Stream]] = route.handler
        body = inspect.signature(route.handler, eval_str=True).parameters["body"].annotation
        self.body: type[BaseModel] = body


_ROUTES = {route.path: _Lean(route) for route in ROUTES if route.lean}


def _json_content(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            kind = value.split(b";", 1)[0].strip().lower()
            return kind == b"application/json" or kind.endswith(b"+json")
    return False


class LeanPath:
    """ASGI: the lean routes with a JSON body; every other request goes to `app`."""

    def __init__(self, app: ASGIApp, get_engine: Callable[[], Engine | None], api_key: str | None):
        self.app = app
        self.get_engine = get_engine
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = _ROUTES.get(scope["path"]) if scope["type"] == "http" else None
        if route is None or scope["method"] != route.method or not _json_content(scope):
            await self.app(scope, receive, send)
            return
        try:
            content = await self._answer(route, scope, receive)
            if isinstance(content, Stream):
                await content.send(send)
                return
        except ValidationError as e:
            message = validation_message(e.errors())
            await error_response("validation", message)(scope, receive, send)
            return
        except ServiceError as e:
            await service_error_response(e)(scope, receive, send)
            return
        headers = [*_JSON_HEADERS, (b"content-length", str(len(content)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    async def _answer(self, route: _Lean, scope: Scope, receive: Receive) -> bytes | Stream:
        if route.guarded and self.api_key is not None:
            authorize(self.api_key, Headers(scope=scope).get("authorization"))
        engine = ready(self.get_engine())
        raw = await _read_body(receive)
        if not raw:  # pydantic would say "EOF while parsing"
            raise ValidationError.from_exception_data(route.body.__name__, [_MISSING])
        body: Any = route.body.model_validate_json(raw)
        return await route.handler(body=body, engine=engine, receive=receive)


async def _read_body(receive: Receive) -> bytes:
    """The whole body (its size is already held to the limit by the edge)."""
    message = await receive()
    body = message.get("body", b"")
    while message.get("more_body", False):
        message = await receive()
        body += message.get("body", b"")
    return body
