"""HTTP routes, each thin: body -> plain Python -> engine -> response body.

POST /tag and /embed are served by hot_routes.py in front of this app; their routes here
document them (OpenAPI) and answer what that path leaves to them (a body not sent as JSON)."""

from __future__ import annotations

import base64
import importlib.metadata
import secrets
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from swagger_ui_bundle import swagger_ui_path

from app.config import Settings
from app.engine import Engine
from app.errors import InvalidInputError, NotReadyError, UnauthorizedError
from app.hot_routes import UNAUTHORIZED, as_list, embed_answer, tag_answer, while_connected
from app.openai_compat import openai_errors
from app.schemas import (
    EmbeddingOut,
    EmbeddingsRequest,
    EmbeddingsResponse,
    EmbedRequest,
    EmbedResponse,
    ErrorResponse,
    HeadOut,
    HealthResponse,
    InfoResponse,
    LimitsOut,
    ModelOut,
    TagRequest,
    TagResponse,
    Usage,
)

# What each error status means, for the OpenAPI schema; every one has the ErrorResponse body.
_ERROR_DOCS: dict[int, dict[str, Any]] = {
    400: {"description": "the model has no sentence encoder (`no_sentence_encoder`): a tagger"},
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
        raise UnauthorizedError(UNAUTHORIZED)


EngineDep = Annotated[Engine, Depends(_engine)]
router = APIRouter()  # /health only: probes carry no key
guarded = APIRouter(dependencies=[Depends(authorize)])  # every other route when a key is set
INFERENCE_ERRORS = _errors(401, 413, 422, 429, 500, 503)
EMBED_ERRORS = _errors(400, 401, 413, 422, 429, 500, 503)
_JSON = "application/json"


@guarded.post("/tag", response_model=TagResponse, responses=INFERENCE_ERRORS)
async def tag(body: TagRequest, engine: EngineDep, request: Request) -> Response:
    """UPOS and NER per word, and entity spans. Raw `inputs` are tokenized (offsets into each
    input); pre-tokenized `tokens` are used as given (offsets null). An empty or whitespace-only
    text gives no tokens and no entities."""
    return Response(await tag_answer(engine, body, request.receive), media_type=_JSON)


@guarded.post("/embed", response_model=EmbedResponse, responses=EMBED_ERRORS)
async def embed(body: EmbedRequest, engine: EngineDep, request: Request) -> Response:
    """One sentence embedding per input (unit length unless `normalize` is false). An empty or
    whitespace-only input is a 422 `empty_input`."""
    return Response(await embed_answer(engine, body, request.receive), media_type=_JSON)


@guarded.post(
    "/v1/embeddings",
    response_model=EmbeddingsResponse,
    responses=openai_errors(EMBED_ERRORS),
)
async def openai_embeddings(
    body: EmbeddingsRequest, engine: EngineDep, request: Request
) -> EmbeddingsResponse:
    """OpenAI-compatible embeddings (unit length); usage counts WordPiece pieces."""
    dim = engine.spec.embedding_dim
    if body.dimensions is not None and dim is not None and body.dimensions != dim:
        raise InvalidInputError(f"dimensions must be {dim} for this model")
    work = engine.embed(as_list(body.input), normalize=True)
    result = await while_connected(request.receive, work)
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
    labels = {h.name: h.labels for h in spec.heads}
    return InfoResponse(
        model=ModelOut(name=spec.name, version=spec.version, sha256=spec.sha256),
        tasks=spec.tasks,
        heads=[HeadOut(name=h.name, decoder=h.decoder, labels=h.labels) for h in spec.heads],
        upos_labels=labels.get("upos"),
        ner_labels=labels.get("ner"),
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
