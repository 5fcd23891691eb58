"""The one way in for a body: every POST route of the table (app/http/routes.py) on raw ASGI,
body bytes -> pydantic-core -> handler -> bytes, and each error written once, in its route's
shape (app/http/errors.py).

Most callers send one sentence per request, so what a request costs outside the model matters
as much as the model: a POST skips FastAPI's routing, dependency solving and response
validation. The FastAPI app behind (app/http/api.py) declares the same routes with the same
body models for its OpenAPI document, and answers every other request: the GET routes, a path
that is not a route (404) and a method a path does not take (405).

A path with one trailing slash is the route without it (`POST /tag/` is /tag): a redirect would
answer a POST with no body, and some clients would not follow it.

A request names its model in its body's `model`, or in its URL: every POST route is also served
under `/models/{name}`, so that a client that takes a base URL (Hugging Face's InferenceClient)
reaches each model by its own. A request that names none gets the default model.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.engine import Engine
from app.core.errors import InvalidInputError, ServiceError
from app.core.models import Models
from app.http.connection import Stream
from app.http.errors import (
    NOT_AN_OBJECT,
    MalformedBodyError,
    service_error_response,
    validation_message,
)
from app.http.guards import authorize, ready
from app.http.routes import ROUTES, Route

_JSON = b"application/json"
_MODELS_PREFIX = "/models/"
MODEL_KEY = "bigru.model"  # in the scope: the name of the model that answered, for the edge


class _Post:
    """A POST route as the dispatcher answers it, read once from the table."""

    def __init__(self, route: Route) -> None:
        self.path = route.path
        self.guarded = route.guarded
        self.handler: Callable[..., Awaitable[bytes | Stream]] = route.handler
        self.body = route.body
        self.fields = tuple(self.body.model_fields)


_POSTS = {route.path: _Post(route) for route in ROUTES if route.method == "POST"}


def model_path(path: str) -> tuple[str | None, str]:
    """The model a path names (`/models/{name}/...`), if any, and the route's path under it."""
    if not path.startswith(_MODELS_PREFIX):
        return None, path
    name, _, rest = path[len(_MODELS_PREFIX) :].partition("/")
    return (name, f"/{rest}") if name else (None, path)


def _post(scope: Scope) -> tuple[_Post, str | None] | None:
    """The route of a POST request and the model its URL names; None for any other request."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    model, path = model_path(scope["path"])
    post = _POSTS.get(path)
    if post is None and len(path) > 1 and path.endswith("/"):
        post = _POSTS.get(path[:-1])
    return None if post is None else (post, model)


class Dispatcher:
    """ASGI: the table's POST routes; every other request goes to `app`."""

    def __init__(self, app: ASGIApp, get_models: Callable[[], Models | None], api_key: str | None):
        self.app = app
        self.get_models = get_models
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = _post(scope)
        if found is None:
            await self.app(scope, receive, send)
            return
        post, model = found
        try:
            answer = await self._answer(post, model, scope, receive)
            if isinstance(answer, Stream):
                await answer.send(send)  # an error before its first byte is answered below
                return
        except ServiceError as e:
            await service_error_response(post.path, e)(scope, receive, send)
            return
        headers = [(b"content-type", _JSON), (b"content-length", str(len(answer)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    async def _answer(
        self, post: _Post, model: str | None, scope: Scope, receive: Receive
    ) -> bytes | Stream:
        """The key, readiness, then the body: its pydantic model, the model it names (or the
        URL does), then its handler."""
        if post.guarded and self.api_key is not None:
            authorize(self.api_key, _header(scope, b"authorization"))
        models = ready(self.get_models())
        raw = await _read_body(receive)
        if not raw or not _json_content(scope):  # pydantic would say "EOF while parsing"
            raise MalformedBodyError(NOT_AN_OBJECT)
        try:
            body: Any = post.body.model_validate_json(raw)
        except ValidationError as e:
            raise MalformedBodyError(validation_message(e.errors(), post.fields)) from None
        engine = _engine(models, model, getattr(body, "model", None))
        scope[MODEL_KEY] = engine.name
        return await post.handler(body, engine, receive)


def _engine(models: Models, in_url: str | None, in_body: str | None) -> Engine:
    """The engine of the model the URL or the body names; both may, if they agree."""
    if in_url is not None and in_body is not None and in_url != in_body:
        raise InvalidInputError(f"the URL names model {in_url!r} and the body {in_body!r}")
    return models.get(in_url or in_body)


def _header(scope: Scope, name: bytes) -> str | None:
    """The request's first `name` header."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _json_content(scope: Scope) -> bool:
    """Whether the body is sent as JSON: application/json, or a +json type."""
    kind = (_header(scope, b"content-type") or "").split(";", 1)[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


async def _read_body(receive: Receive) -> bytes:
    """The whole body (its size is already held to the limit by the edge)."""
    message = await receive()
    body = message.get("body", b"")
    while message.get("more_body", False):
        message = await receive()
        body += message.get("body", b"")
    return body
