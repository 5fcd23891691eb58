"""The bodies of Hugging Face's token-classification pipeline, as
`InferenceClient.token_classification` sends and reads them. TEI's embedding paths take
/embed's bodies (app/http/native.py)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from app.http.fields import Body, Text


class TokenClassificationParameters(Body):
    aggregation_strategy: Literal["simple", "first", "average", "max"] = Field(
        "simple",
        description="all give the same groups: the model labels whole words (per-word labels: "
        "/tag)",
    )
    ignore_labels: list[str] = Field(["O"], description="entity labels to leave out")

    @field_validator("aggregation_strategy", mode="before")
    @classmethod
    def _grouped(cls, value: Any) -> Any:
        if value == "none":
            raise ValueError(
                "the model labels whole words, so every strategy groups them; "
                "per-word labels are on /tag"
            )
        return value


class TokenClassificationRequest(Body):
    """Hugging Face's token-classification body, as `InferenceClient.token_classification`
    sends it."""

    inputs: Text = Field(examples=["Alice moved to Paris."])
    parameters: TokenClassificationParameters = Field(default_factory=TokenClassificationParameters)


class EntityGroupOut(BaseModel):
    """One entity in the Hugging Face pipeline format."""

    entity_group: str
    score: float = Field(description="mean span-head score of its words")
    word: str = Field(description="the entity's text")
    start: int = Field(description="character offset into the input")
    end: int = Field(description="exclusive character offset")


TokenClassificationResponse = list[EntityGroupOut]
