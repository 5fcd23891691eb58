"""Answers: a text's sentences' decoded tags assembled into tokens with every head's labels,
entities and sentences.

A tagged token is a dict: `text`, `start`, `end`, then `<head>` and `<head>_score` for each head
asked for, in the model's order (bigru-en: `upos`, `ner`, `xpos`, `feats`, `lemma`, `deprel`);
orjson writes it in that order. The dependency head (`deprel`) gives each token its `head` too,
just before: its head's index in the input's tokens, the root's its own (as spaCy's
`Doc.to_json`); heads never cross a sentence. Entities come from the span (CRF) head, when it is
asked for; each sentence is tagged on its own, so no entity crosses a sentence boundary. Token,
entity and sentence offsets are into the whole input text; token indices into the whole input's
tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.model.decode import SCORE_DIGITS, HeadTags, Span, WordTags, iob2_spans
from app.model.spec import ModelSpec
from app.model.text import Token

# text, start and end (character offsets into the input; None for pre-tokenized input, end
# exclusive), then per head its label and the label's probability (softmax, or CRF marginal)
TaggedToken = dict[str, Any]


@dataclass(frozen=True)
class Entity:
    text: str
    label: str
    start: int | None
    end: int | None
    token_start: int
    token_end: int  # exclusive
    score: float  # mean score of its tokens' span labels


@dataclass(frozen=True)
class Sentence:
    start: int | None  # character offsets (None: pre-tokenized input), end exclusive
    end: int | None
    token_start: int
    token_end: int  # exclusive


@dataclass(frozen=True)
class TaggedText:
    tokens: list[TaggedToken]
    entities: list[Entity]
    sentences: list[Sentence]


class Assembler:
    """A text's answer from its sentences' decoded tags, for the heads asked for."""

    def __init__(self, spec: ModelSpec):
        self.names = [h.name for h in spec.heads]
        span = next((h for h in spec.heads if h.crf is not None), None)
        self.span_head = span.name if span is not None else None  # the entities' head

    def text(
        self,
        tokens: Sequence[Token],
        source: str | None,
        bounds: list[tuple[int, int]],
        tags: list[WordTags],
        heads: list[str] | None,
    ) -> TaggedText:
        """`bounds`: each sentence's [start, end) tokens, `tags` its decoded heads."""
        names = self.names if heads is None else heads
        out: list[TaggedToken] = []
        entities: list[Entity] = []
        sentences: list[Sentence] = []
        for (a, b), words in zip(bounds, tags, strict=True):
            part = self._tokens(tokens[a:b], source, words, names, a)
            if self.span_head in names:
                span_tags = words[self.span_head]
                entities += [
                    _entity(s, part, a, source, span_tags.scores)
                    for s in iob2_spans(span_tags.labels)
                ]
            out += part
            first, last = part[0], part[-1]
            sentences.append(Sentence(first["start"], last["end"], a, b))
        return TaggedText(out, entities, sentences)

    def _tokens(
        self, tokens: list[Token], source: str | None, tags: WordTags, names: list[str], first: int
    ) -> list[TaggedToken]:
        """A sentence's tokens, its first token being the input's `first`."""
        heads: list[tuple[str, str, HeadTags, list[int] | None]] = [
            (name, f"{name}_score", tags[name], _absolute(tags[name].heads, first))
            for name in names
        ]
        tagged = []
        for i, t in enumerate(tokens):
            token: TaggedToken = {
                "text": t.text,
                "start": t.start if source is not None else None,
                "end": t.end if source is not None else None,
            }
            for label_key, score_key, head, tree in heads:
                if tree is not None:
                    token["head"] = tree[i]
                token[label_key] = head.labels[i]
                token[score_key] = head.scores[i]
            tagged.append(token)
        return tagged


def _absolute(heads: list[int] | None, first: int) -> list[int] | None:
    """A tree head's heads as indices into the input's tokens."""
    return None if heads is None else [first + h for h in heads]


def _entity(
    span: Span, tagged: list[TaggedToken], first: int, source: str | None, scores: list[float]
) -> Entity:
    """`span` over a sentence's `tagged` tokens, the sentence starting at token `first`."""
    words = tagged[span.start : span.end]
    start, end = words[0]["start"], words[-1]["end"]
    if source is not None and start is not None and end is not None:
        text = source[start:end]
    else:
        text = " ".join(t["text"] for t in words)
    return Entity(
        text=text,
        label=span.label,
        start=start,
        end=end,
        token_start=first + span.start,
        token_end=first + span.end,
        score=round(float(np.mean(scores[span.start : span.end])), SCORE_DIGITS),
    )
