"""OpenAI's embeddings API: POST /v1/embeddings."""

from __future__ import annotations

import base64

import numpy as np
from pydantic import TypeAdapter
from starlette.types import Receive

from app.core.engine import Engine
from app.core.errors import InvalidInputError
from app.http.connection import while_connected
from app.http.fields import as_list
from app.http.openai import EmbeddingOut, EmbeddingsRequest, EmbeddingsResponse, Usage

_ANSWER = TypeAdapter(EmbeddingsResponse)  # writes the body as the document describes it


async def openai_embeddings(body: EmbeddingsRequest, engine: Engine, receive: Receive) -> bytes:
    """OpenAI-compatible embeddings (unit length); usage counts WordPiece pieces."""
    dim = engine.spec.embedding_dim
    if body.dimensions is not None and dim is not None and body.dimensions != dim:
        raise InvalidInputError(f"dimensions must be {dim} for this model")
    result = await while_connected(receive, engine.embed(as_list(body.input), normalize=True))
    as_base64 = body.encoding_format == "base64"
    data = [
        EmbeddingOut(index=i, embedding=_base64(v) if as_base64 else v.tolist())
        for i, v in enumerate(result.vectors)
    ]
    usage = Usage(prompt_tokens=result.pieces, total_tokens=result.pieces)
    return _ANSWER.dump_json(EmbeddingsResponse(data=data, model=engine.spec.name, usage=usage))


def _base64(vector: np.ndarray) -> str:
    return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
