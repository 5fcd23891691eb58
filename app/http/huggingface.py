"""The bodies of Hugging Face's token-classification pipeline, as
`InferenceClient.token_classification` sends and reads them and transformers'
`TokenClassificationPipeline` answers. TEI's embedding paths take /embed's bodies
(app/http/native.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from app.http.fields import Body, ModelName, Text, Texts


class TokenClassificationParameters(Body):
    aggregation_strategy: Literal["none", "simple", "first", "average", "max"] = Field(
        "simple",
        description="none: one item per word, its IOB2 label as `entity`; the others group "
        "words into entities, all alike: the model labels whole words",
    )
    ignore_labels: list[str] = Field(
        ["O"], description="labels to leave out: entity groups, or with `none` IOB2 labels"
    )


class TokenClassificationRequest(Body):
    """Hugging Face's token-classification body, as `InferenceClient.token_classification`
    sends it; a list of texts is answered with a list per text."""

    inputs: Text | Texts = Field(examples=["Alice moved to Paris."])
    parameters: TokenClassificationParameters = Field(default_factory=TokenClassificationParameters)
    model: ModelName = None


class EntityGroupOut(BaseModel):
    """One entity in the Hugging Face pipeline format."""

    entity_group: str
    score: float = Field(description="mean span-head score of its words")
    word: str = Field(description="the entity's text")
    start: int = Field(description="character offset into the input")
    end: int = Field(description="exclusive character offset")


class EntityTokenOut(BaseModel):
    """One word, as the pipeline answers with `aggregation_strategy: none`."""

    entity: str = Field(description="the word's IOB2 label from the span head, e.g. B-PER")
    score: float = Field(description="the label's span-head score")
    index: int = Field(
        description="the word's place in its input, from 1 (as transformers, whose tokenizer's "
        "first token [CLS] is 0)"
    )
    word: str
    start: int = Field(description="character offset into the input")
    end: int = Field(description="exclusive character offset")


Entities = list[EntityGroupOut] | list[EntityTokenOut]
TokenClassificationResponse = Entities | list[Entities]  # a list of texts: a list per text
