"""The routes Hugging Face clients call: TEI's embedding paths and a token-classification
pipeline.

- `POST /` and `POST /invocations` are /embed under the paths text-embeddings-inference also
  serves it at: `InferenceClient(model=<base URL>).feature_extraction(text)` posts to the base
  URL. `GET /` stays the page.
- `POST /pipeline/token-classification` answers `{"inputs": text, "parameters": {...}}` with the
  pipeline's entity groups, `[{"entity_group", "score", "word", "start", "end"}]`, the format
  most NER tooling reads; `InferenceClient(model=<that URL>).token_classification(text)`.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from app.api import EMBED_ERRORS, INFERENCE_ERRORS, EngineDep, authorize, embed
from app.engine import Entity
from app.hot_routes import while_connected
from app.schemas import (
    EmbedResponse,
    EntityGroupOut,
    TokenClassificationRequest,
    TokenClassificationResponse,
)

router = APIRouter(dependencies=[Depends(authorize)])

for _path in ("/", "/invocations"):
    router.post(_path, response_model=EmbedResponse, responses=EMBED_ERRORS, summary="Embed (TEI)")(
        embed
    )


@router.post(
    "/pipeline/token-classification",
    response_model=TokenClassificationResponse,
    responses=INFERENCE_ERRORS,
)
async def token_classification(
    body: TokenClassificationRequest, engine: EngineDep, request: Request
) -> list[EntityGroupOut]:
    """Named entities in the Hugging Face token-classification pipeline's format, offsets into
    `inputs`. Every `aggregation_strategy` gives the same groups: the model labels whole
    words."""
    [tagged] = await while_connected(request.receive, engine.tag_texts([body.inputs]))
    ignore = set(body.parameters.ignore_labels)
    return [_group(e) for e in tagged.entities if e.label not in ignore]


def _group(entity: Entity) -> EntityGroupOut:
    assert entity.start is not None and entity.end is not None  # raw text has offsets
    return EntityGroupOut(
        entity_group=entity.label,
        score=entity.score,
        word=entity.text,
        start=entity.start,
        end=entity.end,
    )
