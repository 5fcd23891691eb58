"""OpenAI's embeddings API: POST /v1/embeddings, and the models: GET /v1/models."""

from __future__ import annotations

import base64

import numpy as np
import orjson
from starlette.types import Receive

from app.core.engine import Engine
from app.http.connection import while_connected
from app.http.fields import as_list
from app.http.guards import ModelsDep
from app.http.openai import EmbeddingsRequest, ModelList, ModelObject, Usage


async def openai_embeddings(body: EmbeddingsRequest, engine: Engine, receive: Receive) -> bytes:
    """OpenAI-compatible embeddings (unit length, the first `dimensions` components if asked);
    usage counts WordPiece pieces, the unit of the per-input piece limit. Floats are written in
    the fewest digits that read back as the same float32, as /embed writes them."""
    work = engine.embed(as_list(body.input), normalize=True, dimensions=body.dimensions)
    result = await while_connected(receive, work)
    as_base64 = body.encoding_format == "base64"
    data = [
        {"object": "embedding", "index": i, "embedding": _base64(v) if as_base64 else v}
        for i, v in enumerate(result.vectors)
    ]
    usage = Usage(prompt_tokens=result.pieces, total_tokens=result.pieces)
    answer = {
        "object": "list",
        "data": data,
        "model": engine.name,
        "usage": usage.model_dump(),
    }
    return orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)


def _base64(vector: np.ndarray) -> str:
    return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")


async def list_models(models: ModelsDep) -> ModelList:
    """Every model this server holds, as OpenAI lists models (what the SDK's
    `client.models.list()` reads)."""
    return ModelList(data=[ModelObject(id=name, created=models.loaded_at) for name in models.names])


async def retrieve_model(model: str, models: ModelsDep) -> ModelObject:
    """One model, as OpenAI describes it; a 404 `model_not_found` if the server has none of
    that name."""
    return ModelObject(id=models.get(model).name, created=models.loaded_at)
