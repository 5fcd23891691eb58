"""Hugging Face's token-classification pipeline: POST /pipeline/token-classification, where
`InferenceClient(model=<that URL>).token_classification(text)` posts. TEI's embedding paths are
/embed's handler (app/http/handlers/native.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

from pydantic import TypeAdapter
from starlette.types import Receive

from app.core.engine import Engine
from app.core.runs import TaggedPart
from app.http.connection import while_connected
from app.http.fields import as_list
from app.http.huggingface import (
    Entities,
    EntityGroupOut,
    EntityTokenOut,
    TokenClassificationRequest,
    TokenClassificationResponse,
)

_ANSWER = TypeAdapter(TokenClassificationResponse)  # writes the body as the document describes it


async def token_classification(
    body: TokenClassificationRequest, engine: Engine, receive: Receive
) -> bytes:
    """Named entities in the Hugging Face token-classification pipeline's format, offsets into
    `inputs`: every `aggregation_strategy` but `none` gives the same groups, the model labels
    whole words; `none` gives each word's IOB2 label. A list of texts is answered with a list
    per text."""
    texts = as_list(body.inputs)
    span = engine.assembler.span_head  # the entities' head: the only one decoded
    parts = engine.text_parts(texts, None if span is None else [span])
    ignore = set(body.parameters.ignore_labels)
    if body.parameters.aggregation_strategy == "none" and span is not None:
        found = _words(parts, span, ignore, len(texts))
    else:
        found = _groups(parts, ignore, len(texts))
    answer = await while_connected(receive, found)
    return _ANSWER.dump_json(answer[0] if isinstance(body.inputs, str) else answer)


async def _groups(
    parts: AsyncIterator[list[TaggedPart]], ignore: set[str], texts: int
) -> list[Entities]:
    """Each text's entities, its tokens let go part by part."""
    found: list[Entities] = [[] for _ in range(texts)]
    async with aclosing(parts):
        async for group in parts:
            for part in group:
                found[part.index] += [
                    EntityGroupOut(
                        entity_group=e.label, score=e.score, word=e.text, start=e.start, end=e.end
                    )
                    for e in part.tagged.entities
                    if e.label not in ignore
                ]
    return found


async def _words(
    parts: AsyncIterator[list[TaggedPart]], span: str, ignore: set[str], texts: int
) -> list[Entities]:
    """Each text's words with their span-head labels, as the pipeline's `none` gives them."""
    found: list[Entities] = [[] for _ in range(texts)]
    async with aclosing(parts):
        async for group in parts:
            for part in group:
                found[part.index] += [
                    EntityTokenOut(
                        entity=t[span],
                        score=t[f"{span}_score"],
                        index=part.first_token + i + 1,
                        word=t["text"],
                        start=t["start"],
                        end=t["end"],
                    )
                    for i, t in enumerate(part.tagged.tokens)
                    if t[span] not in ignore
                ]
    return found
