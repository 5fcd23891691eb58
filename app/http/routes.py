"""THE route table: every operation of the service, once.

The documented FastAPI app (api.py) registers each route, and so its OpenAPI document
lists them; the lean path (lean.py) answers the `lean` ones itself; the edge (edge.py) labels
its metrics by these paths. The order is the OpenAPI document's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import Response

from app.http import handlers
from app.http.errors import error_docs
from app.http.huggingface import TokenClassificationResponse
from app.http.native import EmbedResponse, HealthResponse, InfoResponse, TagResponse
from app.http.openai import EmbeddingsResponse, openai_errors

INFERENCE_ERRORS = error_docs(401, 413, 422, 429, 500, 503)
EMBED_ERRORS = error_docs(400, 401, 413, 422, 429, 500, 503)
_TEXT = {200: {"content": {"text/plain": {"schema": {"type": "string"}}}}}
_CONLLU = {
    200: {
        "content": {"text/plain": {"schema": {"type": "string"}}},
        "description": ("JSON, or with `format: conllu` CoNLL-U text"),
    }
}


@dataclass(frozen=True)
class Route:
    method: Literal["GET", "POST"]
    path: str
    handler: Callable[..., Awaitable[Any]]  # handlers.py; FastAPI names the operation after it
    response_model: Any = None  # what the OpenAPI document says a 200 holds
    responses: dict[int | str, dict[str, Any]] = field(default_factory=dict)
    summary: str | None = None  # None: FastAPI's, from the handler's name
    guarded: bool = True  # behind the API key, when one is set
    lean: bool = False  # a POST with a JSON body, answered by lean.py; the handler gives bytes
    documented: bool = True  # in the OpenAPI document
    response_class: type[Response] | None = None


ROUTES = (
    Route("GET", "/health", handlers.health, HealthResponse, error_docs(503), guarded=False),
    Route("POST", "/tag", handlers.tag, TagResponse, {**_CONLLU, **INFERENCE_ERRORS}, lean=True),
    Route("POST", "/embed", handlers.embed, EmbedResponse, EMBED_ERRORS, lean=True),
    Route(
        "POST",
        "/v1/embeddings",
        handlers.openai_embeddings,
        EmbeddingsResponse,
        openai_errors(EMBED_ERRORS),
    ),
    Route("GET", "/info", handlers.info, InfoResponse, error_docs(401, 503)),
    Route(
        "GET",
        "/metrics",
        handlers.metrics,
        responses={**_TEXT, **error_docs(401)},
        response_class=Response,
    ),
    Route("GET", "/openapi.json", handlers.openapi, documented=False),
    Route("GET", "/docs", handlers.docs, documented=False),
    # text-embeddings-inference serves /embed at these paths too: `InferenceClient(model=<base
    # URL>).feature_extraction(text)` posts to the base URL.
    *(
        Route("POST", path, handlers.embed, EmbedResponse, EMBED_ERRORS, "Embed (TEI)", lean=True)
        for path in ("/", "/invocations")
    ),
    # `InferenceClient(model=<that URL>).token_classification(text)`
    Route(
        "POST",
        "/pipeline/token-classification",
        handlers.token_classification,
        TokenClassificationResponse,
        INFERENCE_ERRORS,
    ),
    Route("GET", "/", handlers.index, guarded=False, documented=False),
)
