"""THE route table: every operation of the service, once.

The dispatcher (dispatcher.py) answers the POST routes, each a body in; the FastAPI app
(api.py) answers the GET routes and declares every route in its OpenAPI document; the edge
(edge.py) labels its metrics by these paths. The order is the OpenAPI document's.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import Response
from pydantic import BaseModel

from app.http import page
from app.http.errors import error_docs
from app.http.handlers import huggingface, native, openai
from app.http.huggingface import TokenClassificationResponse
from app.http.native import (
    EmbedResponse,
    HealthResponse,
    InfoResponse,
    SimilarityResponse,
    TagResponse,
)
from app.http.openai import EmbeddingsResponse, ModelList, ModelObject, openai_errors

INFERENCE_ERRORS = error_docs(401, 404, 413, 422, 429, 500, 503)
EMBED_ERRORS = error_docs(400, 401, 404, 413, 422, 429, 500, 503)
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
    # app/http/handlers; the OpenAPI document names the operation after it. A POST route's
    # handler takes the body, the engine and `receive`, and gives bytes or a Stream.
    handler: Callable[..., Awaitable[Any]]
    response_model: Any = None  # what the OpenAPI document says a 200 holds
    responses: dict[int | str, dict[str, Any]] = field(default_factory=dict)
    summary: str | None = None  # None: FastAPI's, from the handler's name
    guarded: bool = True  # behind the API key, when one is set
    documented: bool = True  # in the OpenAPI document
    response_class: type[Response] | None = None

    @property
    def body(self) -> type[BaseModel]:
        """A POST route's body model: its handler's `body` parameter's type."""
        signature = inspect.signature(self.handler, eval_str=True)
        body: type[BaseModel] = signature.parameters["body"].annotation
        return body


ROUTES = (
    Route("GET", "/health", native.health, HealthResponse, error_docs(503), guarded=False),
    Route("POST", "/tag", native.tag, TagResponse, {**_CONLLU, **INFERENCE_ERRORS}),
    Route("POST", "/embed", native.embed, EmbedResponse, EMBED_ERRORS),
    Route(
        "POST",
        "/v1/embeddings",
        openai.openai_embeddings,
        EmbeddingsResponse,
        openai_errors(EMBED_ERRORS),
    ),
    Route("GET", "/v1/models", openai.list_models, ModelList, openai_errors(error_docs(401, 503))),
    Route(
        "GET",
        "/v1/models/{model}",
        openai.retrieve_model,
        ModelObject,
        openai_errors(error_docs(401, 404, 503)),
    ),
    Route("GET", "/info", native.info, InfoResponse, error_docs(401, 404, 503)),
    Route(
        "GET",
        "/metrics",
        native.metrics,
        responses={**_TEXT, **error_docs(401)},
        response_class=Response,
    ),
    Route("GET", "/openapi.json", page.openapi, documented=False),
    Route("GET", "/docs", page.docs, documented=False),
    # text-embeddings-inference serves /embed at these paths too: `InferenceClient(model=<base
    # URL>).feature_extraction(text)` posts to the base URL.
    *(
        Route("POST", path, native.embed, EmbedResponse, EMBED_ERRORS, "Embed (TEI)")
        for path in ("/", "/invocations")
    ),
    # `InferenceClient(model=<base URL>/similarity).sentence_similarity(sentence, others)`
    Route(
        "POST",
        "/similarity",
        native.similarity,
        SimilarityResponse,
        EMBED_ERRORS,
        "Similarity (TEI)",
    ),  # fmt: skip
    # `InferenceClient(model=<that URL>).token_classification(text)`
    Route(
        "POST",
        "/pipeline/token-classification",
        huggingface.token_classification,
        TokenClassificationResponse,
        INFERENCE_ERRORS,
    ),
    Route("GET", "/", page.index, guarded=False, documented=False),
)
