"""HTTP routes, each thin: body -> plain Python -> engine -> response body. Plus the middleware
that gives every request an id, a log line and its metrics."""

from __future__ import annotations

import asyncio
import base64
import importlib.metadata
import logging
import re
import secrets
import time
import uuid
from collections.abc import Awaitable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import orjson
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import TypeAdapter
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from swagger_ui_bundle import swagger_ui_path

from app import logs
from app.config import Settings
from app.engine import Engine
from app.errors import (
    BodyLimitMiddleware,
    ClientGoneError,
    InvalidInputError,
    NotReadyError,
    UnauthorizedError,
    error_response,
)
from app.metrics import Metrics
from app.openai_compat import openai_errors
from app.schemas import (
    EmbeddingOut,
    EmbeddingsRequest,
    EmbeddingsResponse,
    EmbedRequest,
    EmbedResponse,
    ErrorResponse,
    HealthResponse,
    InfoResponse,
    LimitsOut,
    ModelOut,
    TagRequest,
    TagResponse,
    Usage,
)

log = logging.getLogger(__name__)

# What each error status means, for the OpenAPI schema; every one has the ErrorResponse body.
_ERROR_DOCS: dict[int, dict[str, Any]] = {
    401: {
        "description": "missing or wrong API key (only when the server has one)",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    },
    413: {
        "description": "over a limit: inputs, characters, words or pieces, body size, or more "
        "sentences than the queue holds"
    },
    422: {"description": "malformed body, or nothing to embed (`empty_input`)"},
    429: {
        "description": "the queue is full; answered at once",
        "headers": {
            "Retry-After": {
                "description": "seconds to wait before retrying",
                "required": True,
                "schema": {"type": "integer"},
            }
        },
    },
    500: {"description": "inference failed; the log line carries the request id"},
    503: {"description": "the model is not loaded yet"},
}
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_ROUTES = {
    *("/", "/tag", "/embed", "/v1/embeddings", "/health", "/info", "/metrics"),
    *("/invocations", "/pipeline/token-classification"),  # app/huggingface.py
}
STATIC_DIR = Path(__file__).resolve().parent / "static"
# The page loads only its own files and talks only to this server; the browser enforces it.
_PAGE_CSP = "default-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"
# Swagger UI: FastAPI's page starts it from an inline script, and it sets inline styles.
_DOCS_CSP = _PAGE_CSP + "; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'"
SWAGGER_UI_DIR = swagger_ui_path  # Swagger UI's files, from the pinned swagger-ui-bundle-v2


async def _engine(request: Request) -> Engine:
    """The loaded engine, or 503. Async: FastAPI runs a sync dependency on a worker thread,
    a thread hop per request (measured with py-spy: 4% of the server's samples under load)."""
    engine: Engine | None = request.app.state.engine
    if engine is None:
        raise NotReadyError("the model is not loaded yet")
    return engine


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorResponse, **_ERROR_DOCS[code]} for code in codes}


_bearer = HTTPBearer(auto_error=False, description="needed only when BIGRU_API_KEY is set")


async def authorize(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    key = request.app.state.settings.api_key
    if key is None:
        return
    given = credentials.credentials if credentials is not None else ""
    # constant time: the comparison does not tell how much of a guess was right
    if not secrets.compare_digest(given.encode(), key.encode()):
        raise UnauthorizedError("missing or wrong API key (Authorization: Bearer <key>)")


T = TypeVar("T")


async def while_connected(request: Request, work: Awaitable[T]) -> T:
    """Await `work`, cancelling it if the client disconnects first: its queued sentences are
    then skipped by the batcher instead of being run for nobody."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnect(request))
    try:
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        watcher.cancel()
    if task not in done:
        task.cancel()
        raise ClientGoneError("the client disconnected")
    return task.result()


async def _disconnect(request: Request) -> None:
    # the body has been read: the next message is the disconnect (or the end of the response)
    while (await request.receive())["type"] != "http.disconnect":
        pass


EngineDep = Annotated[Engine, Depends(_engine)]
router = APIRouter()  # /health only: probes carry no key
guarded = APIRouter(dependencies=[Depends(authorize)])  # every other route when a key is set
INFERENCE_ERRORS = _errors(401, 413, 422, 429, 500, 503)


def _as_list(inputs: str | list[str]) -> list[str]:
    return [inputs] if isinstance(inputs, str) else inputs


# The hot routes return their body already serialized. /tag: pydantic-core validates the
# engine's dataclasses against the response schema and writes the JSON in one pass (FastAPI's
# own path, dataclasses -> dicts -> validation -> dicts -> json.dumps, cost ~0.5 ms more per
# sentence). /embed: orjson writes the float32 array itself, each value in the fewest digits
# that read back as the same float32 (half the bytes of float64 digits, a third of the time).
_TAG_JSON = TypeAdapter(TagResponse)
_JSON = "application/json"


@guarded.post("/tag", response_model=TagResponse, responses=INFERENCE_ERRORS)
async def tag(body: TagRequest, engine: EngineDep, request: Request) -> Response:
    """UPOS and NER per word, and entity spans. Raw `inputs` are tokenized (offsets into each
    input); pre-tokenized `tokens` are used as given (offsets null). An empty or whitespace-only
    text gives no tokens and no entities."""
    if body.tokens is not None:
        work = engine.tag_tokens(body.tokens)
    else:
        assert body.inputs is not None  # TagRequest guarantees exactly one
        work = engine.tag_texts(_as_list(body.inputs))
    tagged = await while_connected(request, work)
    body = _TAG_JSON.dump_json(_TAG_JSON.validate_python(tagged, from_attributes=True))
    return Response(body, media_type=_JSON)


@guarded.post("/embed", response_model=EmbedResponse, responses=INFERENCE_ERRORS)
async def embed(body: EmbedRequest, engine: EngineDep, request: Request) -> Response:
    """One sentence embedding per input (unit length unless `normalize` is false). An empty or
    whitespace-only input is a 422 `empty_input`."""
    work = engine.embed(_as_list(body.inputs), body.normalize, body.truncation)
    vectors = (await while_connected(request, work)).vectors
    return Response(orjson.dumps(vectors, option=orjson.OPT_SERIALIZE_NUMPY), media_type=_JSON)


@guarded.post(
    "/v1/embeddings",
    response_model=EmbeddingsResponse,
    responses=openai_errors(INFERENCE_ERRORS),
)
async def openai_embeddings(
    body: EmbeddingsRequest, engine: EngineDep, request: Request
) -> EmbeddingsResponse:
    """OpenAI-compatible embeddings (unit length); usage counts WordPiece pieces."""
    dim = engine.spec.embedding_dim
    if body.dimensions is not None and body.dimensions != dim:
        raise InvalidInputError(f"dimensions must be {dim} for this model")
    result = await while_connected(request, engine.embed(_as_list(body.input), normalize=True))
    as_base64 = body.encoding_format == "base64"
    data = [
        EmbeddingOut(index=i, embedding=_base64(v) if as_base64 else v.tolist())
        for i, v in enumerate(result.vectors)
    ]
    usage = Usage(prompt_tokens=result.pieces, total_tokens=result.pieces)
    return EmbeddingsResponse(data=data, model=engine.spec.name, usage=usage)


def _base64(vector: np.ndarray) -> str:
    return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")


@router.get("/health", response_model=HealthResponse, responses=_errors(503))
async def health(request: Request) -> HealthResponse:
    """200 once the model is loaded and warmed up; 503 before."""
    await _engine(request)
    return HealthResponse()


@guarded.get("/info", response_model=InfoResponse, responses=_errors(401, 503))
async def info(engine: EngineDep, request: Request) -> InfoResponse:
    s: Settings = request.app.state.settings
    spec = engine.spec
    return InfoResponse(
        model=ModelOut(name=spec.name, version=spec.version, sha256=spec.sha256),
        upos_labels=spec.upos_labels,
        ner_labels=spec.ner_labels,
        entity_labels=engine.entity_labels,
        embedding_dim=spec.embedding_dim,
        providers=engine.providers,
        limits=LimitsOut.model_validate(s.model_dump(include=set(LimitsOut.model_fields))),
        package_version=_package_version(),
    )


def _package_version() -> str:
    try:
        return importlib.metadata.version("bigru-serve")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@guarded.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}, **_errors(401)},
)
async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    content, media_type = request.app.state.metrics.render()
    return Response(content, media_type=media_type)


@guarded.get("/openapi.json", include_in_schema=False)
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@guarded.get("/docs", include_in_schema=False)
async def docs(request: Request) -> HTMLResponse:
    """Swagger UI with the schema inline (`spec` wins over `url`): a page fetched with the key
    needs no second, keyless request for the schema. Its files are served from /swagger-ui
    (mounted in main.py), so the page works offline; no validator badge from swagger.io."""
    html = get_swagger_ui_html(
        openapi_url="openapi.json",
        title="bigru-serve",
        swagger_js_url="swagger-ui/swagger-ui-bundle.js",
        swagger_css_url="swagger-ui/swagger-ui.css",
        swagger_favicon_url="swagger-ui/favicon-32x32.png",
        swagger_ui_parameters={"spec": request.app.openapi(), "validatorUrl": None},
    )
    html.headers["Content-Security-Policy"] = _DOCS_CSP
    return html


router.include_router(guarded)
page = APIRouter(include_in_schema=False)


@page.get("/")
async def index() -> FileResponse:
    """A page to try the model: text in, entities and UPOS out; similarity of two sentences.
    Its script and style are under /static (mounted in main.py)."""
    return FileResponse(STATIC_DIR / "index.html", headers={"Content-Security-Policy": _PAGE_CSP})


class RequestContextMiddleware:
    """X-Request-ID in (if sane) and out, one log line and the request metrics per request; an
    unexpected exception becomes a logged 500 in the usual error body."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        token = logs.request_id.set(rid)
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started, status = True, message["status"]
                headers = [*message.get("headers", []), (b"x-request-id", rid.encode())]
                message = {**message, "headers": headers}
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error")
            if started:
                raise
            await error_response("internal", f"internal error, request id {rid}")(
                scope, receive, send_with_id
            )
        finally:
            seconds = time.perf_counter() - start
            route = scope["path"] if scope["path"] in _ROUTES else "other"
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.request_seconds.labels(route).observe(seconds)
            log.info("%s %s %d %.1fms", scope["method"], scope["path"], status, seconds * 1000)
            logs.request_id.reset(token)


def install_middleware(app: FastAPI, settings: Settings, metrics: Metrics) -> None:
    """Outermost last: ids and metrics see every response, the 413s and CORS ones too."""
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID"],
        )
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
