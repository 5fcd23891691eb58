"""The native API's handlers: /tag, /embed (also at TEI's paths), /health, /info, /metrics."""

from __future__ import annotations

import importlib.metadata
from collections.abc import AsyncIterator
from contextlib import aclosing

import orjson
from fastapi import Request, Response
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
from app.core.runs import TaggedPart
from app.http.connection import Stream, while_connected
from app.http.fields import as_list
from app.http.formats import WRITERS, Writer
from app.http.guards import ModelsDep
from app.http.native import (
    EmbedRequest,
    HeadOut,
    HealthResponse,
    InfoResponse,
    LimitsOut,
    MemoryOut,
    ModelOut,
    ServedModelOut,
    SimilarityRequest,
    TagRequest,
)

_CONLLU = "text/plain; charset=utf-8"
_JSON = "application/json"


async def tag(body: TagRequest, engine: Engine, receive: Receive) -> Stream:
    """Every head's label per word (UPOS, NER, XPOS, features, lemma), entity spans and
    sentences. Raw `inputs` of any length are tokenized and split into sentences (offsets into
    each input); pre-tokenized `tokens` are one sentence per list, used as given (offsets
    null). An empty or whitespace-only text gives no tokens, entities or sentences. The answer
    is written as its sentences are tagged (app.http.connection)."""
    heads = body.heads  # the engine refuses a head the model lacks
    if body.format != "json":  # CoNLL-U and spaCy answer every head: the engine tags them all
        engine.check_heads(heads)
        heads = None
    texts = None if body.inputs is None else as_list(body.inputs)
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


async def embed(body: EmbedRequest, engine: Engine, receive: Receive) -> bytes:
    """One sentence embedding per input (unit length unless `normalize` is false). An empty or
    whitespace-only input is a 422 `empty_input`."""
    work = engine.embed(as_list(body.inputs), body.normalize, body.truncation, body.dimensions)
    vectors = (await while_connected(receive, work)).vectors
    # orjson writes the float32 rows itself, each value in the fewest digits that read back as
    # the same float32
    return orjson.dumps(vectors, option=orjson.OPT_SERIALIZE_NUMPY)


async def similarity(body: SimilarityRequest, engine: Engine, receive: Receive) -> bytes:
    """TEI's sentence similarity: the cosine of `source_sentence` with each of `sentences`, in
    their order."""
    texts = [body.inputs.source_sentence, *body.inputs.sentences]
    work = engine.embed(texts, normalize=True, truncate=body.truncation)
    vectors = (await while_connected(receive, work)).vectors
    return orjson.dumps(vectors[1:] @ vectors[0], option=orjson.OPT_SERIALIZE_NUMPY)


async def health(models: ModelsDep) -> HealthResponse:
    """200 once every model is loaded and warmed up; 503 before."""
    return HealthResponse()


async def info(models: ModelsDep, request: Request, model: str | None = None) -> InfoResponse:
    """The default model (or `model`'s), the server's settings, and every model it holds."""
    s: Settings = request.app.state.settings
    engine = models.get(model)
    spec = engine.spec
    labels = {h.name: h.labels for h in spec.heads}
    return InfoResponse(
        model=_model(engine),
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
        models=[
            ServedModelOut(
                **_model(e).model_dump(),
                tasks=e.spec.tasks,
                heads=[h.name for h in e.spec.heads],
                embedding_dim=e.spec.embedding_dim,
                default=e is models.default,
            )
            for e in models.engines.values()
        ],
    )


def _model(engine: Engine) -> ModelOut:
    spec = engine.spec
    return ModelOut(
        name=engine.name,
        version=spec.version,
        sha256=spec.sha256,
        languages=spec.languages,
        license=spec.license,
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
