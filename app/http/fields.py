"""What every request body shares: strict types, no unknown fields, text that is valid
Unicode. A value of the wrong JSON type is refused with a 422 (`"yes"` is not a bool, `"384"`
not an int)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _encodable(text: str) -> str:
    """JSON lets a lone surrogate (\\ud800) through; it could not be written back as UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"not valid Unicode at character {e.start}") from e
    return text


Text = Annotated[str, AfterValidator(_encodable)]
# A list of inputs must not be empty; an empty string is the engine's business (see engine.py).
Texts = Annotated[list[Text], Field(min_length=1)]


# The model a body names (GET /v1/models, or /info `models`); absent or null: the default.
ModelName = Annotated[
    str | None,
    Field(description="the model to answer with; default: the server's", examples=["bigru-en"]),
]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def as_list(inputs: str | list[str]) -> list[str]:
    """`Text | Texts` as the list of texts the engine takes."""
    return [inputs] if isinstance(inputs, str) else inputs
