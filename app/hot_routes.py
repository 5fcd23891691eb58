"""POST /tag and POST /embed (and /embed's TEI paths, / and /invocations) on a lean path:
raw ASGI, body bytes -> pydantic-core -> engine -> orjson bytes.

Most callers send one sentence per request, so what a request costs outside the model matters
as much as the model. This path skips FastAPI's routing, dependency solving and response
validation (together about 0.1 ms per request here, as much as the model's share of one
sentence), yet answers exactly as the documented routes in api.py do: the same request models
validate the body, the same functions below write the answer, the same error bodies come back.
A body that is not sent as JSON is left to api.py's routes, whose answer to it is a 422.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails
from starlette.types import ASGIApp, Receive, Scope, Send

from app.engine import Engine, TaggedSentence
from app.errors import (
    ClientGoneError,
    NotReadyError,
    ServiceError,
    UnauthorizedError,
)
from app.http_errors import (
    error_response,
    service_error_response,
    validation_message,
)
from app.schemas import EmbedRequest, TagRequest

T = TypeVar("T")
_JSON_HEADERS = [(b"content-type", b"application/json")]
_MISSING = InitErrorDetails(type="missing", loc=(), input=b"")
UNAUTHORIZED = "missing or wrong API key (Authorization: Bearer <key>)"


def as_list(inputs: str | list[str]) -> list[str]:
    return [inputs] if isinstance(inputs, str) else inputs


async def tag_answer(engine: Engine, body: TagRequest, receive: Receive) -> bytes:
    """The /tag response body. The engine's sentences, entities (dataclasses) and tokens (dicts)
    hold the fields of the response schema in its order, so orjson writes them as they are."""
    if body.tokens is not None:
        work = engine.tag_tokens(body.tokens)
    else:
        assert body.inputs is not None  # TagRequest guarantees exactly one
        work = engine.tag_texts(as_list(body.inputs))
    tagged: list[TaggedSentence] = await while_connected(receive, work)
    return orjson.dumps(tagged)


async def embed_answer(engine: Engine, body: EmbedRequest, receive: Receive) -> bytes:
    """The /embed response body: orjson writes the float32 rows itself, each value in the
    fewest digits that read back as the same float32."""
    work = engine.embed(as_list(body.inputs), body.normalize, body.truncation)
    vectors = (await while_connected(receive, work)).vectors
    return orjson.dumps(vectors, option=orjson.OPT_SERIALIZE_NUMPY)


async def while_connected(receive: Receive, work: Awaitable[T]) -> T:
    """Await `work` in this task, cancelling it if the client disconnects first: its queued
    sentences are then skipped by the batcher instead of being run for nobody. The request body
    has been read, so the next message `receive` gives is the disconnect."""
    task = asyncio.current_task()
    assert task is not None
    watcher = asyncio.ensure_future(receive())
    finished = False

    def gone(_: object) -> None:
        if not finished and not watcher.cancelled():
            task.cancel()

    watcher.add_done_callback(gone)
    try:
        return await work
    except asyncio.CancelledError:
        if watcher.done() and not watcher.cancelled():
            task.uncancel()
            raise ClientGoneError("the client disconnected") from None
        raise
    finally:
        finished = True
        watcher.cancel()


Handler = Callable[[Engine, BaseModel, Receive], Awaitable[bytes]]
_ROUTES: dict[str, tuple[type[BaseModel], Handler]] = {
    "/tag": (TagRequest, tag_answer),  # type: ignore[dict-item]
    "/embed": (EmbedRequest, embed_answer),  # type: ignore[dict-item]
    # text-embeddings-inference's paths for the same (app/huggingface.py documents them)
    "/": (EmbedRequest, embed_answer),  # type: ignore[dict-item]
    "/invocations": (EmbedRequest, embed_answer),  # type: ignore[dict-item]
}


def _json_content(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            kind = value.split(b";", 1)[0].strip().lower()
            return kind == b"application/json" or kind.endswith(b"+json")
    return False


class HotRoutes:
    """ASGI: POST /tag and /embed with a JSON body; every other request goes to `app`."""

    def __init__(self, app: ASGIApp, get_engine: Callable[[], Engine | None], api_key: str | None):
        self.app = app
        self.get_engine = get_engine
        self.api_key = api_key.encode() if api_key is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = _ROUTES.get(scope["path"]) if scope["type"] == "http" else None
        if route is None or scope["method"] != "POST" or not _json_content(scope):
            await self.app(scope, receive, send)
            return
        model, answer = route
        try:
            self._authorize(scope)
            engine = self.get_engine()
            if engine is None:
                raise NotReadyError("the model is not loaded yet")
            raw = await _read_body(receive)
            if not raw:  # pydantic would say "EOF while parsing"
                raise ValidationError.from_exception_data(model.__name__, [_MISSING])
            content = await answer(engine, model.model_validate_json(raw), receive)
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

    def _authorize(self, scope: Scope) -> None:
        if self.api_key is None:
            return
        given = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, credentials = value.partition(b" ")
                given = credentials.strip() if scheme.lower() == b"bearer" else b""
        # constant time: the comparison does not tell how much of a guess was right
        if not secrets.compare_digest(given, self.api_key):
            raise UnauthorizedError(UNAUTHORIZED)


async def _read_body(receive: Receive) -> bytes:
    """The whole body (its size is already held to the limit by the gateway)."""
    message = await receive()
    body = message.get("body", b"")
    while message.get("more_body", False):
        message = await receive()
        body += message.get("body", b"")
    return body
