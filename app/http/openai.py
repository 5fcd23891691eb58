"""OpenAI's embeddings API: its bodies, and its error shape on the /v1/ paths,
`{"error": {"message", "type", "param", "code"}}`.

The OpenAI SDK reads that shape (its exception's message, `.type`, `.code`); from ours it shows
only the status. app/http/errors.py writes every error under /v1/ in it, wherever it arises.
`code` carries our `error_type`; `param` is null.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, Field, field_validator

from app.http.fields import Body, ModelName, Text, Texts


def _token_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _token_ids(value: Any) -> bool:
    """One token id, or a list of them: OpenAI's forms of input besides text."""
    return _token_id(value) or (isinstance(value, list) and all(map(_token_id, value)))


class EmbeddingsRequest(Body):
    """OpenAI-compatible; `model` names one of GET /v1/models (absent or null: the default)."""

    input: Text | Texts
    model: ModelName = None
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None
    dimensions: int | None = Field(
        None,
        description="each vector's first `dimensions` components, renormalized: the model orders "
        "them most telling first. null: all (GET /info `embedding_dim`)",
    )

    @field_validator("input", mode="before")
    @classmethod
    def _not_token_ids(cls, value: Any) -> Any:
        """OpenAI also takes token ids (LangChain's OpenAIEmbeddings sends tiktoken's by
        default); they index another tokenizer's vocabulary, so say what to send instead."""
        if isinstance(value, list) and value and all(map(_token_ids, value)):
            raise ValueError(
                "token ids are not accepted, only text: this model has its own vocabulary. "
                "Send strings (LangChain: OpenAIEmbeddings(check_embedding_ctx_length=False))"
            )
        return value


class EmbeddingOut(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="floats, or base64 of little-endian float32")


class Usage(BaseModel):
    prompt_tokens: int = Field(description="WordPiece pieces")
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingOut]
    model: str
    usage: Usage


class ModelObject(BaseModel):
    """A model as OpenAI's `GET /v1/models` lists it."""

    id: str = Field(description="the name requests give it")
    object: Literal["model"] = "model"
    created: int = Field(description="when this server loaded it (Unix seconds)")
    owned_by: str = "bigru-serve"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelObject]


class OpenAIError(BaseModel):
    message: str
    type: str = Field(
        description="invalid_request_error, authentication_error, rate_limit_error or server_error"
    )
    param: str | None = Field(description="always null")
    code: str = Field(description="this server's error_type")


class OpenAIErrorResponse(BaseModel):
    """The error body of /v1/* routes, in OpenAI's shape (what the OpenAI SDK reads)."""

    error: OpenAIError


PREFIX = "/v1/"


def openai_errors(responses: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of a /v1/ route: the same statuses, OpenAI's error body."""
    return {code: {**doc, "model": OpenAIErrorResponse} for code, doc in responses.items()}


def _type(status: int) -> str:
    """OpenAI's `type` for a status."""
    if status == 401:
        return "authentication_error"
    if status == 429:
        return "rate_limit_error"
    return "server_error" if status >= 500 else "invalid_request_error"


def error_body(status: int, error_type: str, message: str) -> bytes:
    """An error in OpenAI's shape; `code` carries our `error_type`."""
    error = {"message": message, "type": _type(status), "param": None, "code": error_type}
    return orjson.dumps({"error": error})
