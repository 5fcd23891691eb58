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
from app.core.tagging import Entity
from app.http.connection import while_connected
from app.http.huggingface import (
    EntityGroupOut,
    TokenClassificationRequest,
    TokenClassificationResponse,
)

_ANSWER = TypeAdapter(TokenClassificationResponse)  # writes the body as the document describes it


async def token_classification(
    body: TokenClassificationRequest, engine: Engine, receive: Receive
) -> bytes:
    """Named entities in the Hugging Face token-classification pipeline's format, offsets into
    `inputs`. Every `aggregation_strategy` gives the same groups: the model labels whole
    words."""
    ignore = set(body.parameters.ignore_labels)
    groups = await while_connected(receive, _entities(engine.text_parts([body.inputs]), ignore))
    return _ANSWER.dump_json(groups)


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
