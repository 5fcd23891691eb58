"""The facade the handlers call: check limits, tokenize, split, featurize, submit, await,
assemble (the answer's shape: app.core.answers).

Inputs and results are plain Python, except embeddings: one float32 array per request, which
the handler writes as JSON without making a Python float of every value. Empty input:
- tagging an empty or whitespace-only text (or an empty token list) gives no tokens, entities
  or sentences, without running the model;
- embedding one is an `EmptyInputError` (422 "empty_input"): there is nothing to pool.
A text to tag is tokenized on a worker thread when it is long, so the event loop goes on
serving other requests meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np

from app.config import Settings
from app.core.answers import Assembler, TaggedText
from app.core.batcher import ModelBatcher
from app.core.errors import (
    EmptyInputError,
    InputTooLargeError,
    InvalidInputError,
    NoSentenceEncoderError,
)
from app.core.off_loop import OffLoop
from app.core.runs import Input, TaggedPart, collect, tag_runs
from app.core.sentences import Splitter
from app.model.featurize import (
    Features,
    WordPiece,
    featurize,
    featurize_pieces,
    text_pieces,
)
from app.model.segment import WINDOW, text_features
from app.model.spec import ModelSpec
from app.model.text import Token, Tokens, split_words, tokenize

Side = Literal["left", "right"]  # the end TEI's `truncate` cuts an over-long input from
_Seq = TypeVar("_Seq", str, list[str], np.ndarray)
_ON_LOOP_CHARS = 20_000  # a longer text is tokenized on a worker thread
_ONE, _NONE = np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64)  # sentence starts


@dataclass(frozen=True)
class Embeddings:
    vectors: np.ndarray  # (N, D) float32, one row per input
    pieces: int  # WordPiece count over all inputs


class Engine:
    """One model's work: `name` is the model's as requests give it."""

    def __init__(
        self,
        name: str,
        spec: ModelSpec,
        batcher: ModelBatcher,
        settings: Settings,
        providers: list[str],
        off_loop: OffLoop,
    ) -> None:
        self.name = name
        self.spec = spec
        self.providers = providers  # active in the ORT session, for /info
        self.batcher = batcher
        self.settings = settings
        self.wordpiece = WordPiece(spec.vocab)
        self.off_loop = off_loop  # shared by the models of the process
        self.splitter = Splitter(
            batcher, self.wordpiece, settings, spec.segmenter_threshold, self.off_loop
        )
        self.assembler = Assembler(spec)
        span = next((h for h in spec.heads if h.crf is not None), None)
        labels = span.labels if span is not None else []
        self.entity_labels = sorted({t[2:] for t in labels if t[:2] in ("B-", "I-")})

    async def warm_up(self) -> None:
        """One tiny inference per task, so the first request pays no first-run costs; then
        batches of the largest size on every worker, straight to the batcher (a request's
        limits are not theirs), so that the process has held the working set of serving before
        its memory is measured (app.core.admission)."""
        await self.tag_tokens([["Warm", "up", "."]])
        if self.spec.segmenter:
            await self.tag_texts(["Warm up. Then go."])
        if "embed" in self.spec.tasks:
            await self.embed(["Warm up."], normalize=True)
        limits = self.batcher.limits
        n = min(limits.max_batch_size * self.batcher.workers, limits.max_queue)
        words = ["warm"] * max(1, limits.max_batch_tokens // limits.max_batch_size)
        await self.batcher.submit("tag", [featurize(words, self.wordpiece)] * n)
        await self._warm_long_sentences()
        if "embed" in self.spec.tasks:
            await self.batcher.submit("embed", [featurize_pieces(words, self.wordpiece)] * n)
        if self.spec.segmenter:
            text = " ".join(["warm"] * WINDOW)
            f = text_features(text, tokenize(text), self.wordpiece)
            window = Features(f.input_ids, f.case_ids, f.word_starts[:0], f.space_ids)
            per_batch = max(1, limits.max_batch_tokens // WINDOW)
            count = min(per_batch * self.batcher.workers, limits.max_queue)
            await self.batcher.submit("segment", [window] * count)

    async def _warm_long_sentences(self) -> None:
        """A text of the longest sentences, through every step of a request: memory for a run
        grows with its sentences' length, not only with the batch's size."""
        words = self.settings.max_tokens_per_input * self.batcher.workers * 4
        await self.tag_texts([" ".join(["A."] * words)])

    async def tag_texts(self, texts: list[str], heads: list[str] | None = None) -> list[TaggedText]:
        """`text_parts`, each input's parts joined: for answers known to be small."""
        return await collect(self.text_parts(texts, heads), len(texts))

    async def tag_tokens(
        self, sentences: list[list[str]], heads: list[str] | None = None
    ) -> list[TaggedText]:
        """`token_parts`, each input's parts joined: for answers known to be small."""
        return await collect(self.token_parts(sentences, heads), len(sentences))

    async def text_parts(
        self, texts: list[str], heads: list[str] | None = None
    ) -> AsyncIterator[list[TaggedPart]]:
        """Each text split into sentences (of any length: the body limit bounds it), each
        sentence tagged on its own, the sentences of every text in shared batches; answered in
        parts (app.core.runs), so that no request holds its whole answer at once."""
        self._check_count(texts)
        self.check_heads(heads)
        self.batcher.check_room(len(texts))
        tokenized = [await self._tokenize(text) for text in texts]
        pairs = zip(texts, tokenized, strict=True)
        starts = await asyncio.gather(*(self.splitter.split(text, toks) for text, toks in pairs))
        inputs = [
            Input(tokens, text, sentences)
            for text, tokens, sentences in zip(texts, tokenized, starts, strict=True)
        ]
        del tokenized, starts
        async for parts in self._runs(inputs, heads):
            yield parts

    async def _tokenize(self, text: str) -> Tokens:
        if len(text) <= _ON_LOOP_CHARS:
            return tokenize(text)
        return await self.off_loop.run(tokenize, text)

    def _runs(
        self, inputs: list[Input], heads: list[str] | None
    ) -> AsyncIterator[list[TaggedPart]]:
        parts = (self.batcher, self.wordpiece, self.assembler, self.off_loop.run)
        return tag_runs(inputs, heads, *parts)

    async def token_parts(
        self, sentences: list[list[str]], heads: list[str] | None = None
    ) -> AsyncIterator[list[TaggedPart]]:
        """Each token list as one sentence, as given; answered in parts, as `text_parts`."""
        self._check_count(sentences)
        self.check_heads(heads)
        for words in sentences:
            self._check_chars(sum(len(w) for w in words) + max(len(words) - 1, 0))
            self._check_words(len(words))
        for words in sentences:  # before any is queued: a refusal comes before the answer
            self._check_piece_count(sum(len(self.wordpiece.word_ids(w)) for w in words))
        inputs = [
            Input([Token(w, -1, -1) for w in words], None, _ONE if words else _NONE)
            for words in sentences
        ]
        async for parts in self._runs(inputs, heads):
            yield parts

    def check_heads(self, heads: list[str] | None) -> None:
        known = [h.name for h in self.spec.heads]
        unknown = [h for h in heads or [] if h not in known]
        if unknown:
            raise InvalidInputError(f"unknown heads {unknown}; this model's heads are {known}")

    async def embed(
        self,
        texts: list[str],
        normalize: bool,
        truncate: Side | None = None,
        dimensions: int | None = None,
    ) -> Embeddings:
        """`truncate`: an input over a size limit is cut from that end to fit, not refused.
        `dimensions`: each vector's first components only (then normalized, if asked), which
        the model orders most telling first."""
        if "embed" not in self.spec.tasks:
            raise NoSentenceEncoderError(
                f"model {self.name} has no sentence encoder: it tags only (see /info)"
            )
        size = self.spec.embedding_dim
        if dimensions is not None and not 1 <= dimensions <= (size or 0):
            raise InvalidInputError(f"dimensions must be between 1 and {size}; got {dimensions}")
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
        vectors = np.stack(await self.batcher.submit("embed", features))  # (N, D), fresh
        vectors = vectors.astype(np.float32, copy=False)
        if dimensions is not None:
            vectors = np.ascontiguousarray(vectors[:, :dimensions])
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

    def _check_pieces(self, features: list[Features]) -> None:
        for f in features:
            self._check_piece_count(f.length)

    def _check_piece_count(self, n: int) -> None:
        """A few words can make many pieces (`a.a.a.…`), so pieces are counted too."""
        if n > self.settings.max_pieces_per_input:
            limit = self.settings.max_pieces_per_input
            raise InputTooLargeError(f"an input has {n} WordPiece pieces; at most {limit}")


def _keep(items: _Seq, n: int, cut_from: Side) -> _Seq:
    """At most `n` of `items`, the rest cut from the `cut_from` end."""
    return items[:n] if cut_from == "right" else items[max(len(items) - n, 0) :]
