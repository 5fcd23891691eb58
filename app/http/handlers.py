"""One handler per operation, shared by the lean path and the documented FastAPI routes, and
the one auth check and the one readiness check both paths run.

Each handler is thin: body -> plain Python -> engine -> response. Its parameters are FastAPI's
(the documented path injects them); the lean path (lean.py) calls the handlers of its routes
with `body`, `engine` and `receive` itself. Those handlers return the JSON body as bytes, or a
`Stream` (app.http.connection) for /tag, whose answer may be long.
"""

from __future__ import annotations

import base64
import importlib.metadata
import secrets
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path
from typing import Annotated

import numpy as np
import orjson
from fastapi import Depends, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.security import HTTPBearer
from starlette.types import Receive

from app.config import Settings
from app.core.admission import (
    BODY_FACTOR,
    REQUEST_BYTES,
    RUNS_BYTES,
    RUNS_FACTOR,
    MemoryBudget,
    Sizing,
)
from app.core.engine import Engine
from app.core.errors import InvalidInputError, NotReadyError
from app.core.runs import TaggedPart
from app.core.tagging import Entity
from app.http.connection import Stream, while_connected
from app.http.errors import UnauthorizedError
from app.http.formats import WRITERS, Writer
from app.http.huggingface import EntityGroupOut, TokenClassificationRequest
from app.http.native import (
    EmbedRequest,
    HeadOut,
    HealthResponse,
    InfoResponse,
    LimitsOut,
    MemoryOut,
    ModelOut,
    TagRequest,
)
from app.http.openai import EmbeddingOut, EmbeddingsRequest, EmbeddingsResponse, Usage

STATIC_DIR = Path(__file__).resolve().parent / "static"
# The page loads only its own files and talks only to this server; the browser enforces it.
_PAGE_CSP = "default-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"
# Swagger UI: FastAPI's page starts it from an inline script, and it sets inline styles.
_DOCS_CSP = _PAGE_CSP + "; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'"
_UNAUTHORIZED = "missing or wrong API key (Authorization: Bearer <key>)"
_CONLLU = "text/plain; charset=utf-8"
_JSON = "application/json"


def authorize(api_key: str | None, authorization: str | None) -> None:
    """The API key check: `authorization` is the request's first Authorization header."""
    if api_key is None:
        return
    scheme, _, credentials = (authorization or "").partition(" ")
    given = credentials.strip() if scheme.lower() == "bearer" else ""
    # constant time: the comparison does not tell how much of a guess was right
    if not secrets.compare_digest(given.encode(), api_key.encode()):
        raise UnauthorizedError(_UNAUTHORIZED)


def ready(engine: Engine | None) -> Engine:
    """The readiness check: the engine once the model is loaded and warmed up."""
    if engine is None:
        raise NotReadyError("the model is not loaded yet")
    return engine


# Read by the documented path for its OpenAPI security scheme; `authorize` checks the header.
_bearer = HTTPBearer(auto_error=False, description="needed only when BIGRU_API_KEY is set")


async def authorized(request: Request, _: Annotated[object, Depends(_bearer)]) -> None:
    """The documented routes' auth dependency."""
    authorize(request.app.state.settings.api_key, request.headers.get("authorization"))


# Async dependencies: FastAPI runs a sync one on a worker thread, a thread hop per request.
async def _engine(request: Request) -> Engine:
    return ready(request.app.state.engine)


async def _receive(request: Request) -> Receive:
    return request.receive


EngineDep = Annotated[Engine, Depends(_engine)]
ReceiveDep = Annotated[Receive, Depends(_receive)]


def _as_list(inputs: str | list[str]) -> list[str]:
    return [inputs] if isinstance(inputs, str) else inputs


async def tag(body: TagRequest, engine: EngineDep, receive: ReceiveDep) -> Stream:
    """Every head's label per word (UPOS, NER, XPOS, features, lemma), entity spans and
    sentences. Raw `inputs` of any length are tokenized and split into sentences (offsets into
    each input); pre-tokenized `tokens` are one sentence per list, used as given (offsets
    null). An empty or whitespace-only text gives no tokens, entities or sentences. The answer
    is written as its sentences are tagged (app.http.connection)."""
    engine.check_heads(body.heads)
    heads = body.heads if body.format == "json" else None
    texts = None if body.inputs is None else _as_list(body.inputs)
    if texts is None:
        assert body.tokens is not None  # TagRequest guarantees exactly one
        parts = engine.token_parts(body.tokens, heads)
    else:
        parts = engine.text_parts(texts, heads)
    media_type = _CONLLU if body.format == "conllu" else _JSON
    return Stream(_written(parts, WRITERS[body.format](texts)), media_type, receive)


async def _written(parts: AsyncIterator[list[TaggedPart]], writer: Writer) -> AsyncIterator[bytes]:
    async with aclosing(parts):
        async for group in parts:
            for part in group:
                for chunk in writer.part(part):
                    yield chunk
    yield writer.end()


async def embed(body: EmbedRequest, engine: EngineDep, receive: ReceiveDep) -> bytes:
    """One sentence embedding per input (unit length unless `normalize` is false). An empty or
    whitespace-only input is a 422 `empty_input`."""
    work = engine.embed(_as_list(body.inputs), body.normalize, body.truncation)
    vectors = (await while_connected(receive, work)).vectors
    # orjson writes the float32 rows itself, each value in the fewest digits that read back as
    # the same float32
    return orjson.dumps(vectors, option=orjson.OPT_SERIALIZE_NUMPY)


async def openai_embeddings(
    body: EmbeddingsRequest, engine: EngineDep, receive: ReceiveDep
) -> EmbeddingsResponse:
    """OpenAI-compatible embeddings (unit length); usage counts WordPiece pieces."""
    dim = engine.spec.embedding_dim
    if body.dimensions is not None and dim is not None and body.dimensions != dim:
        raise InvalidInputError(f"dimensions must be {dim} for this model")
    result = await while_connected(receive, engine.embed(_as_list(body.input), normalize=True))
    as_base64 = body.encoding_format == "base64"
    data = [
        EmbeddingOut(index=i, embedding=_base64(v) if as_base64 else v.tolist())
        for i, v in enumerate(result.vectors)
    ]
    usage = Usage(prompt_tokens=result.pieces, total_tokens=result.pieces)
    return EmbeddingsResponse(data=data, model=engine.spec.name, usage=usage)


def _base64(vector: np.ndarray) -> str:
    return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")


async def token_classification(
    body: TokenClassificationRequest, engine: EngineDep, receive: ReceiveDep
) -> list[EntityGroupOut]:
    """Named entities in the Hugging Face token-classification pipeline's format, offsets into
    `inputs`. Every `aggregation_strategy` gives the same groups: the model labels whole
    words."""
    ignore = set(body.parameters.ignore_labels)
    return await while_connected(receive, _entities(engine.text_parts([body.inputs]), ignore))


async def _entities(
    parts: AsyncIterator[list[TaggedPart]], ignore: set[str]
) -> list[EntityGroupOut]:
    """The entities of a text of any length, its tokens let go part by part."""
    async with aclosing(parts):
        return [
            _group(e)
            async for group in parts
            for part in group
            for e in part.tagged.entities
            if e.label not in ignore
        ]


def _group(entity: Entity) -> EntityGroupOut:
    assert entity.start is not None and entity.end is not None  # raw text has offsets
    return EntityGroupOut(
        entity_group=entity.label,
        score=entity.score,
        word=entity.text,
        start=entity.start,
        end=entity.end,
    )


async def health(engine: EngineDep) -> HealthResponse:
    """200 once the model is loaded and warmed up; 503 before."""
    return HealthResponse()


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
        processes=s.processes,
        workers=s.workers,
        limits=LimitsOut.model_validate(s.model_dump(include=set(LimitsOut.model_fields))),
        memory=_memory(request.app.state.memory_sizing, request.app.state.memory_budget),
        package_version=_package_version(),
    )


def _memory(sizing: Sizing, budget: MemoryBudget) -> MemoryOut:
    return MemoryOut(
        limit_bytes=sizing.limit,
        target=sizing.target,
        processes=sizing.processes,
        warm_bytes=sizing.idle,
        supervisor_bytes=sizing.supervisor,
        budget_bytes=sizing.budget,
        request_bytes=REQUEST_BYTES,
        runs_bytes=RUNS_BYTES,
        runs_factor=RUNS_FACTOR,
        body_factor=BODY_FACTOR,
        held_bytes=budget.held,
    )


def _package_version() -> str:
    try:
        return importlib.metadata.version("bigru-serve")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    content, media_type = request.app.state.metrics.render()
    return Response(content, media_type=media_type)


async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


async def docs(request: Request) -> HTMLResponse:
    """Swagger UI with the schema inline (`spec` wins over `url`): a page fetched with the key
    needs no second, keyless request for the schema. Its files are served from /swagger-ui
    (mounted in api.py), so the page works offline; no validator badge from swagger.io."""
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


async def index() -> FileResponse:
    """A page to try the model: text in, entities and UPOS out; similarity of two sentences.
    Its script and style are under /static (mounted in api.py)."""
    return FileResponse(STATIC_DIR / "index.html", headers={"Content-Security-Policy": _PAGE_CSP})
