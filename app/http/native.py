"""The native API's bodies: /tag, /embed (also TEI's), /info, /health."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from app.http.fields import Body, ModelName, Text, Texts


def _word(word: str) -> str:
    """The model sees exactly the tokens given, so a token must be one word: the raw-text
    tokenizer never makes an empty one, nor one holding whitespace or control characters."""
    if not word or any(c.isspace() or unicodedata.category(c) == "Cc" for c in word):
        raise ValueError(
            "a token must be non-empty, with no whitespace or control characters "
            "(the model sees exactly the tokens given; send text to split as `inputs`)"
        )
    return word


Word = Annotated[
    Text,
    AfterValidator(_word),
    Field(json_schema_extra={"minLength": 1, "pattern": r"^[^\s\x00-\x1f\x7f-\x9f]+$"}),
]


def _exactly_one_schema(schema: dict[str, Any]) -> None:
    """The JSON schema of TagRequest: one of `inputs` and `tokens`, each absent when not given
    (an explicit null is read as absent, but is not advertised)."""
    for name in ("inputs", "tokens"):
        field = schema["properties"][name]
        field.pop("default", None)
        kinds = [kind for kind in field.pop("anyOf") if kind != {"type": "null"}]
        field.update(kinds[0] if len(kinds) == 1 else {"anyOf": kinds})
    schema["oneOf"] = [{"required": ["inputs"]}, {"required": ["tokens"]}]


class TagRequest(Body):
    """Raw text (`inputs`, one string or several, each of any length: it is split into
    sentences) or pre-tokenized sentences (`tokens`, each list one sentence)."""

    model_config = ConfigDict(json_schema_extra=_exactly_one_schema)

    inputs: Text | Texts | None = Field(None, examples=["Alice moved to Paris. She likes it."])
    tokens: list[list[Word]] | None = Field(None, min_length=1, examples=[[["Alice", "moved"]]])
    heads: list[str] | None = Field(
        None,
        description='the heads to answer (GET /info `heads`), e.g. ["ner"]; default: all. '
        "Entities come with the span head (`ner`). `[]`: tokens and sentences only, at the "
        "cost of splitting the text (the tagger does not run).",
        examples=[["ner"]],
    )
    format: Literal["json", "conllu", "spacy"] = Field(
        "json",
        description="json: the tokens, entities and sentences below; conllu: CoNLL-U text, a "
        "block per sentence; spacy: per input, JSON that spacy.tokens.Doc.from_json reads. "
        "conllu and spacy answer every head.",
    )
    model: ModelName = None

    @model_validator(mode="after")
    def _exactly_one(self) -> TagRequest:
        if (self.inputs is None) == (self.tokens is None):
            raise ValueError("give exactly one of `inputs` and `tokens`")
        return self


_HEAD_FIELDS = {
    "description": "then, for each head of the model (GET /info `heads`, in that order), "
    "`<head>`: its label and `<head>_score`: the label's probability (softmax, or a span head's "
    "CRF marginal; a lemma head answers the lemma). A dependency head (`deprel`, decoder "
    "`tree`) gives `head` first: the index in this answer's `tokens` of the token's head, a "
    "sentence root's its own; `deprel_score` is the probability of both the head and the "
    "relation. bigru-en's heads are `upos`, `ner`, `xpos`, `feats`, `lemma` and `deprel`.",
    "additionalProperties": {"anyOf": [{"type": "string"}, {"type": "number"}]},
    "examples": [
        {
            "text": "Alice",
            "start": 0,
            "end": 5,
            "upos": "PROPN",
            "upos_score": 0.99,
            "ner": "B-PER",
            "ner_score": 0.98,
        }  # fmt: skip
    ],
}


class TokenOut(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra=_HEAD_FIELDS)

    text: str
    start: int | None = Field(description="character offset into the input; null if pre-tokenized")
    end: int | None = Field(description="exclusive character offset")


class EntityOut(BaseModel):
    text: str
    label: str
    start: int | None
    end: int | None
    token_start: int
    token_end: int = Field(description="exclusive token index")
    score: float


class SentenceOut(BaseModel):
    start: int | None = Field(description="character offset into the input; null if pre-tokenized")
    end: int | None = Field(description="exclusive character offset")
    token_start: int
    token_end: int = Field(description="exclusive token index")


class TagResult(BaseModel):
    tokens: list[TokenOut]
    entities: list[EntityOut]
    sentences: list[SentenceOut] = Field(description="in order, covering every token")


class SpacyDocOut(BaseModel):
    """What `spacy.tokens.Doc.from_json` reads (`format: spacy`); offsets are characters."""

    text: str
    tokens: list[dict[str, Any]]
    ents: list[dict[str, Any]]
    sents: list[dict[str, Any]]


TagResponse = list[TagResult] | list[SpacyDocOut]


def _null_only(schema: dict[str, Any]) -> None:
    """Advertise null as the one valid value; a string still gets a 422 that says why."""
    schema.pop("anyOf", None)
    schema.pop("default", None)
    schema["type"] = "null"


# What TEI's embedding bodies share, with TEI's meaning
Truncate = Annotated[
    bool, Field(description="cut an input over a size limit to fit instead of refusing it")
]
Direction = Annotated[Literal["Left", "Right"], Field(description="the end `truncate` cuts from")]
PromptName = Annotated[
    str | None, Field(description="the model has no prompts", json_schema_extra=_null_only)
]


class _Truncation:
    """TEI's `truncate`, `truncation_direction` and `prompt_name`, read (the fields are each
    body's own, so that each lists its fields in its own order)."""

    @field_validator("prompt_name", check_fields=False)
    @classmethod
    def _no_prompts(cls, value: str | None) -> None:
        if value is not None:
            raise ValueError(f"this model has no prompts, so none named {value!r}; leave it unset")

    @property
    def truncation(self) -> Literal["left", "right"] | None:
        """The end an over-long input is cut from; None: refuse it."""
        if not getattr(self, "truncate"):  # noqa: B009 (a field of the body class)
            return None
        return "left" if getattr(self, "truncation_direction") == "Left" else "right"  # noqa: B009


class EmbedRequest(_Truncation, Body):
    """/embed's body, also TEI's."""

    inputs: Text | Texts = Field(examples=["Alice moved to Paris."])
    normalize: bool = True
    truncate: Truncate = False
    truncation_direction: Direction = "Right"
    prompt_name: PromptName = None
    dimensions: int | None = Field(
        None,
        description="each vector's first `dimensions` components only (then normalized, if "
        "asked): the model orders them most telling first. null: all of them (GET /info "
        "`embedding_dim`)",
    )
    model: ModelName = None


EmbedResponse = list[list[float]]


class SimilarityInputs(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    source_sentence: Text
    sentences: Texts


class SimilarityRequest(_Truncation, Body):
    """TEI's /similarity body (huggingface_hub's `InferenceClient.sentence_similarity` sends it
    to a model URL ending in /similarity)."""

    inputs: SimilarityInputs = Field(
        examples=[{"source_sentence": "A man plays a guitar.", "sentences": ["Someone plays."]}]
    )
    truncate: Truncate = False
    truncation_direction: Direction = "Right"
    prompt_name: PromptName = None
    parameters: dict[str, Any] | None = Field(
        None, description="what Hugging Face clients send beside `inputs`; none are read"
    )
    model: ModelName = None


SimilarityResponse = list[float]


class ModelOut(BaseModel):
    name: str = Field(description="as requests name it: its folder's name")
    version: str
    sha256: str
    languages: list[str] | None = Field(
        description="the languages it was trained on (ISO 639-1); other text gets confident "
        "nonsense. null: its card does not say"
    )
    license: str | None = Field(description="the model's licence (SPDX); the code's is Apache-2.0")


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


class MemoryOut(BaseModel):
    """How this process's memory for requests was sized (README, "Memory")."""

    limit_bytes: int | None = Field(description="the memory the processes share; null: unknown")
    target: float = Field(description="the share of the limit they plan to use")
    processes: int
    warm_bytes: int = Field(description="this process's peak resident memory once warmed up")
    supervisor_bytes: int = Field(description="its share of the supervising process's memory")
    budget_bytes: int | None = Field(
        description="what requests in flight may hold at once in this process; null: no bound"
    )
    request_bytes: int = Field(description="what each request holds, whatever its body")
    runs_bytes: int = Field(description="what a long answer's runs in flight hold, at most")
    runs_factor: int = Field(description="...and no more than this per byte of its body")
    body_factor: int = Field(description="what a request holds per byte of its body")
    held_bytes: int = Field(description="what the requests in flight hold now")


class HeadOut(BaseModel):
    name: str = Field(description="the token fields `<name>` and `<name>_score` in /tag")
    decoder: Literal["softmax", "crf", "lemma", "tree"] = Field(
        description="crf: an IOB2 span head (entities); lemma: edit scripts, answered as lemmas; "
        "tree: a dependency parse, one tree per sentence (each token's head and relation)"
    )
    labels: list[str]


class ServedModelOut(ModelOut):
    """One model the server holds, as requests name it."""

    tasks: list[Literal["tag", "embed", "segment"]]
    heads: list[str]
    embedding_dim: int | None
    default: bool = Field(description="whether it answers the requests that name no model")


class InfoResponse(BaseModel):
    model: ModelOut = Field(description="the model described here: the default, or `?model=`")
    tasks: list[Literal["tag", "embed", "segment"]] = Field(
        description="what the model does: /tag, /embed only with a sentence encoder, and "
        "segment when it splits raw text into sentences"
    )
    heads: list[HeadOut]
    upos_labels: list[str] | None = Field(description="the `upos` head's labels, if it has one")
    ner_labels: list[str] | None = Field(description="the `ner` head's labels, if it has one")
    entity_labels: list[str] = Field(description="entity types of the span head")
    embedding_dim: int | None = Field(description="null: no sentence encoder")
    providers: list[str] = Field(description="execution providers active in the ORT session")
    processes: int = Field(description="server processes on this port, each with its own model")
    workers: int = Field(description="ORT runs at once in each process")
    limits: LimitsOut
    memory: MemoryOut
    package_version: str
    models: list[ServedModelOut] = Field(description="every model this server holds")


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"
