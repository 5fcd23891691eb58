"""The facade the handlers call: check limits, tokenize, featurize, submit, await, assemble.

A tagged token is a dict: `text`, `start`, `end`, then `<head>` and `<head>_score` for each of
the model's heads in its order (bigru-en: `upos`, `ner`); orjson writes it in that order.
Entities come from the model's span (CRF) head, if it has one.

Inputs and results are plain Python, except embeddings: one float32 array per request, which
the handler writes as JSON without making a Python float of every value. Empty input:
- tagging an empty or whitespace-only text (or an empty token list) gives no tokens and no
  entities, without running the model;
- embedding one is an `EmptyInputError` (422 "empty_input"): there is nothing to pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np

from app.config import Settings
from app.core.batcher import Batcher, Finish
from app.core.errors import EmptyInputError, InputTooLargeError, NoSentenceEncoderError
from app.model.backend import Outputs
from app.model.decode import Span, WordTags, iob2_spans, tag_decoder
from app.model.featurize import Features, WordPiece, featurize, featurize_pieces, text_pieces
from app.model.spec import ModelSpec
from app.model.text import Token, split_words, tokenize

Side = Literal["left", "right"]  # the end TEI's `truncate` cuts an over-long input from
_Seq = TypeVar("_Seq", str, list[str], np.ndarray)


def batch_finishers(spec: ModelSpec) -> dict[str, Finish]:
    """What the batcher's worker thread does after the ORT run: decode a tag batch at once
    (one CRF pass over all its sentences, off the event loop)."""
    decoder = tag_decoder([(h.name, h.labels, h.crf) for h in spec.heads])

    def tag(features: list[Features], out: Outputs) -> list[WordTags]:
        return decoder.decode_batch(out, [f.word_starts for f in features])

    return {"tag": tag}


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
class TaggedSentence:
    tokens: list[TaggedToken]
    entities: list[Entity]


@dataclass(frozen=True)
class Embeddings:
    vectors: np.ndarray  # (N, D) float32, one row per input
    pieces: int  # WordPiece count over all inputs


class Engine:
    def __init__(
        self, spec: ModelSpec, batcher: Batcher, settings: Settings, providers: list[str]
    ) -> None:
        self.spec = spec
        self.providers = providers  # active in the ORT session, for /info
        self.batcher = batcher
        self.settings = settings
        self.wordpiece = WordPiece(spec.vocab)
        span = next((h for h in spec.heads if h.crf is not None), None)
        self.span_head = span.name if span is not None else None  # the entities' head
        labels = span.labels if span is not None else []
        self.entity_labels = sorted({t[2:] for t in labels if t[:2] in ("B-", "I-")})

    async def warm_up(self) -> None:
        """One tiny inference per task, so the first request pays no first-run costs."""
        await self.tag_tokens([["Warm", "up", "."]])
        if "embed" in self.spec.tasks:
            await self.embed(["Warm up."], normalize=True)

    async def tag_texts(self, texts: list[str]) -> list[TaggedSentence]:
        sentences = self._tokenize(texts)
        tags = await self._infer("tag", [[t.text for t in tokens] for tokens in sentences])
        return [
            self._assemble(tokens, text, t)
            for text, tokens, t in zip(texts, sentences, tags, strict=True)
        ]

    async def tag_tokens(self, sentences: list[list[str]]) -> list[TaggedSentence]:
        self._check_count(sentences)
        for words in sentences:
            self._check_chars(sum(len(w) for w in words) + max(len(words) - 1, 0))
            self._check_words(len(words))
        tags = await self._infer("tag", sentences)
        return [
            self._assemble([Token(w, -1, -1) for w in words], None, t)
            for words, t in zip(sentences, tags, strict=True)
        ]

    async def embed(
        self, texts: list[str], normalize: bool, truncate: Side | None = None
    ) -> Embeddings:
        """`truncate`: an input over a size limit is cut from that end to fit, not refused."""
        if "embed" not in self.spec.tasks:
            raise NoSentenceEncoderError(
                f"model {self.spec.name} has no sentence encoder: it tags only (see /info)"
            )
        if truncate is None:
            self._check_texts(texts)
            found = [self._pieces(text) for text in texts]
        else:
            self._check_count(texts)
            found = [self._fit(text, truncate) for text in texts]
        for _, words in found:
            self._check_words(words)
        for i, (_, words) in enumerate(found):
            if not words:
                raise EmptyInputError(f"input {i} is empty or whitespace only; nothing to embed")
        features = [f for f, _ in found]
        self._check_pieces(features)
        outputs = await self.batcher.submit("embed", features)
        vectors = np.stack([out["embedding"] for out in outputs])  # (N, D), a fresh array
        vectors = vectors.astype(np.float32, copy=False)
        if normalize:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return Embeddings(vectors, sum(f.length for f in features))

    def _pieces(self, text: str) -> tuple[Features, int]:
        """The sentence encoder's input (piece ids only) and the word count of one text: from
        the per-chunk cache, unless a rule across chunks may apply or the count is within the one
        word it may miss of the limit."""
        found = text_pieces(text, self.wordpiece)
        if found is not None and found[1] < self.settings.max_tokens_per_input:
            return found
        words = split_words(text)
        return featurize_pieces(words, self.wordpiece), len(words)

    def _fit(self, text: str, side: Side) -> tuple[Features, int]:
        """`_pieces` of the text, cut from `side` to the characters, then the words, then the
        pieces an input may have (TEI's `truncate`)."""
        s = self.settings
        if len(text) <= s.max_chars_per_input:
            found = self._pieces(text)
            if found[1] <= s.max_tokens_per_input and found[0].length <= s.max_pieces_per_input:
                return found
        words = split_words(_keep(text, s.max_chars_per_input, side))
        words = _keep(words, s.max_tokens_per_input, side)
        f = featurize_pieces(words, self.wordpiece)
        ids = _keep(f.input_ids, s.max_pieces_per_input, side)
        return Features(ids, f.case_ids[: len(ids)], f.word_starts), len(words)

    def _tokenize(self, texts: list[str]) -> list[list[Token]]:
        """Each text's tokens; sizes are checked before and after splitting."""
        self._check_texts(texts)
        sentences = [tokenize(text) for text in texts]
        for tokens in sentences:
            self._check_words(len(tokens))
        return sentences

    def _check_texts(self, texts: list[str]) -> None:
        """All sizes first: no work for a request that will be refused."""
        self._check_count(texts)
        for text in texts:
            self._check_chars(len(text))

    def _check_count(self, inputs: Sequence[object]) -> None:
        if len(inputs) > self.settings.max_inputs_per_request:
            limit = self.settings.max_inputs_per_request
            raise InputTooLargeError(f"{len(inputs)} inputs; at most {limit} per request")

    def _check_chars(self, n: int) -> None:
        if n > self.settings.max_chars_per_input:
            limit = self.settings.max_chars_per_input
            raise InputTooLargeError(f"an input has {n} characters; at most {limit}")

    def _check_words(self, n: int) -> None:
        if n > self.settings.max_tokens_per_input:
            limit = self.settings.max_tokens_per_input
            raise InputTooLargeError(f"an input has {n} tokens; at most {limit}")

    def _featurize(self, sentences: list[list[str]]) -> list[Features]:
        """Features per sentence; a few words can make many pieces (`a.a.a.…`), so count them."""
        features = [featurize(words, self.wordpiece) for words in sentences]
        self._check_pieces(features)
        return features

    def _check_pieces(self, features: list[Features]) -> None:
        limit = self.settings.max_pieces_per_input
        for f in features:
            if f.length > limit:
                raise InputTooLargeError(
                    f"an input has {f.length} WordPiece pieces; at most {limit}"
                )

    async def _infer(self, task: str, sentences: list[list[str]]) -> list[WordTags | None]:
        """Decoded tags per sentence; None for an empty one (never run)."""
        features = self._featurize([words for words in sentences if words])
        tags = iter(await self.batcher.submit(task, features))
        return [next(tags) if words else None for words in sentences]

    def _assemble(
        self, tokens: list[Token], source: str | None, tags: WordTags | None
    ) -> TaggedSentence:
        """One sentence's answer: its tokens with their words' labels, and its entities;
        `source` is the raw text (None: pre-tokenized)."""
        if tags is None:
            return TaggedSentence([], [])
        heads = [(name, f"{name}_score", head) for name, head in tags.items()]
        tagged = []
        for i, t in enumerate(tokens):
            token: TaggedToken = {
                "text": t.text,
                "start": t.start if source is not None else None,
                "end": t.end if source is not None else None,
            }
            for label_key, score_key, head in heads:
                token[label_key] = head.labels[i]
                token[score_key] = head.scores[i]
            tagged.append(token)
        if self.span_head is None:
            return TaggedSentence(tagged, [])
        span_tags = tags[self.span_head]
        spans = iob2_spans(span_tags.labels)
        entities = [_entity(s, tagged, source, span_tags.scores) for s in spans]
        return TaggedSentence(tagged, entities)


def _keep(items: _Seq, n: int, cut_from: Side) -> _Seq:
    """At most `n` of `items`, the rest cut from the `cut_from` end."""
    return items[:n] if cut_from == "right" else items[max(len(items) - n, 0) :]


def _entity(
    span: Span, tagged: list[TaggedToken], source: str | None, scores: list[float]
) -> Entity:
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
        token_start=span.start,
        token_end=span.end,
        score=float(np.mean(scores[span.start : span.end])),
    )
