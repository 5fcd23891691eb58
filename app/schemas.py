"""Request and response bodies (pydantic v2). Unknown fields are refused with a 422."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


def _encodable(text: str) -> str:
    """JSON lets a lone surrogate (\\ud800) through; it could not be written back as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"not valid Unicode at character {e.start}") from e
    return text


def _word(word: str) -> str:
    """The model sees exactly the tokens given, so a token must be one word: the raw-text
    tokenizer never makes an empty one, nor one holding whitespace or control characters."""
    if not word or any(c.isspace() or unicodedata.category(c) == "Cc" for c in word):
        raise ValueError(
            "a token must be non-empty, with no whitespace or control characters "
            "(the model sees exactly the tokens given; send text to split as `inputs`)"
        )
    return word


Text = Annotated[str, AfterValidator(_encodable)]
# A list of inputs must not be empty; an empty string is the engine's business (see engine.py).
Texts = Annotated[list[Text], Field(min_length=1)]
Word = Annotated[
    Text,
    AfterValidator(_word),
    Field(json_schema_extra={"minLength": 1, "pattern": r"^[^\s\x00-\x1f\x7f-\x9f]+$"}),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _exactly_one_schema(schema: dict[str, Any]) -> None:
    """The JSON schema of TagRequest: one of `inputs` and `tokens`, each absent when not given
    (an explicit null is read as absent, but is not advertised)."""
    for name in ("inputs", "tokens"):
        field = schema["properties"][name]
        field.pop("default", None)
        kinds = [kind for kind in field.pop("anyOf") if kind != {"type": "null"}]
        field.update(kinds[0] if len(kinds) == 1 else {"anyOf": kinds})
    schema["oneOf"] = [{"required": ["inputs"]}, {"required": ["tokens"]}]


class TagRequest(_Body):
    """Raw text (`inputs`, one string or several) or pre-tokenized sentences (`tokens`)."""

    model_config = ConfigDict(json_schema_extra=_exactly_one_schema)

    inputs: Text | Texts | None = Field(None, examples=["Alice moved to Paris."])
    tokens: list[list[Word]] | None = Field(None, min_length=1, examples=[[["Alice", "moved"]]])

    @model_validator(mode="after")
    def _exactly_one(self) -> TagRequest:
        if (self.inputs is None) == (self.tokens is None):
            raise ValueError("give exactly one of `inputs` and `tokens`")
        return self


class TokenOut(BaseModel):
    text: str
    start: int | None = Field(description="character offset into the input; null if pre-tokenized")
    end: int | None = Field(description="exclusive character offset")
    upos: str
    upos_score: float
    ner: str
    ner_score: float


class EntityOut(BaseModel):
    text: str
    label: str
    start: int | None
    end: int | None
    token_start: int
    token_end: int = Field(description="exclusive token index")
    score: float


class TagResult(BaseModel):
    tokens: list[TokenOut]
    entities: list[EntityOut]


TagResponse = list[TagResult]


class EmbedRequest(_Body):
    inputs: Text | Texts = Field(examples=["Alice moved to Paris."])
    normalize: bool = True


EmbedResponse = list[list[float]]


class EmbeddingsRequest(_Body):
    """OpenAI-compatible; `model` is accepted and ignored (this server has one model)."""

    input: Text | Texts
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None
    dimensions: int | None = Field(None, description="must equal the model's embedding_dim")


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


class ModelOut(BaseModel):
    name: str
    version: str
    sha256: str


class LimitsOut(BaseModel):
    max_batch_size: int
    max_batch_tokens: int
    max_wait_ms: float
    max_queue: int
    max_padding: float
    max_inputs_per_request: int
    max_chars_per_input: int
    max_tokens_per_input: int
    max_pieces_per_input: int
    max_body_bytes: int


class InfoResponse(BaseModel):
    model: ModelOut
    upos_labels: list[str]
    ner_labels: list[str]
    entity_labels: list[str]
    embedding_dim: int
    providers: list[str] = Field(description="execution providers active in the ORT session")
    limits: LimitsOut
    package_version: str


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


class ErrorResponse(BaseModel):
    error: str
    error_type: str
