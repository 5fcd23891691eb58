"""Running text of any length -> its sentences.

A text is split where the segmenter (segmenter.onnx, app.model.segment) scores a sentence
start; a text with no sentence-final punctuation and no line break before its last word is one
sentence and skips it. A run of words with no boundary that is over the per-sentence limits is
cut into windows of whole words. A long text's windows go to the batcher's bulk lane
(`Batcher.feed`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

from app.config import Settings
from app.core.batcher import ModelBatcher
from app.core.errors import InputTooLargeError
from app.core.off_loop import OffLoop
from app.model.featurize import Features, WordPiece
from app.model.segment import (
    cut_long,
    sentence_starts,
    short_line_starts,
    text_features,
    windows,
    word_scores,
)
from app.model.text import Token, Tokens

_FINAL = re.compile(r"[.!?…]")
_NO_WORDS = np.zeros(0, dtype=np.int64)
_ON_LOOP_WORDS = 2000  # a text of more words is counted and featurized on the off-loop thread
_R = TypeVar("_R")
_FIRST_ONLY = np.zeros(1, dtype=np.int64)


class Splitter:
    """Sentences of raw text, by the model's segmenter (if it has one) and the size limits."""

    def __init__(
        self,
        batcher: ModelBatcher,
        wordpiece: WordPiece,
        settings: Settings,
        threshold: float | None,
        off_loop: OffLoop,
    ):
        self.batcher = batcher
        self.wordpiece = wordpiece
        self.settings = settings
        self.threshold = threshold  # None: no segmenter, a text is one sentence (then cut)
        self.off_loop = off_loop

    async def split(self, text: str, tokens: Sequence[Token]) -> np.ndarray:
        """(S,) int64 the first word of each sentence, in order (none for no words). A long
        text's per-word work runs off the event loop, which goes on serving others."""
        if not tokens:
            return _NO_WORDS
        counts = await self._work(len(tokens), _piece_counts, tokens, self.wordpiece)
        starts = _FIRST_ONLY
        if self.threshold is not None and _may_hold_sentences(text, tokens):
            starts = await self._segment(text, tokens)
        s = self.settings
        longest, limit = int(counts.max()), s.max_pieces_per_input
        if longest > limit:  # one word: no cut brings it within the limit
            raise InputTooLargeError(f"an input has {longest} WordPiece pieces; at most {limit}")
        one = len(starts) == 1 and len(tokens) <= s.max_tokens_per_input
        if one and int(counts.sum()) <= limit:  # one sentence within the limits: most inputs
            return starts
        starts = cut_long(starts, len(tokens), s.max_pieces_per_input, counts)
        return cut_long(starts, len(tokens), s.max_tokens_per_input)

    async def _work(self, words: int, work: Callable[..., _R], *args: object) -> _R:
        if words <= _ON_LOOP_WORDS:
            return work(*args)
        return await self.off_loop.run(work, *args)

    async def _segment(self, text: str, tokens: Sequence[Token]) -> np.ndarray:
        f = await self._work(len(tokens), text_features, text, tokens, self.wordpiece)
        wins = windows(len(f.input_ids))
        parts = [
            Features(
                f.input_ids[w.start : w.end],
                f.case_ids[w.start : w.end],
                _NO_WORDS,
                f.space_ids[w.start : w.end],
            )
            for w in wins
        ]
        logits = await self.batcher.feed("segment", parts)
        assert self.threshold is not None
        starts = sentence_starts(word_scores(f, wins, logits), self.threshold)
        if isinstance(tokens, Tokens):  # raw text, whose lines the rule reads
            word_starts = np.frombuffer(tokens.starts, np.int32)
            starts = await self._work(len(tokens), short_line_starts, text, word_starts, starts)
        return starts


def _piece_counts(tokens: Sequence[Token], wordpiece: WordPiece) -> np.ndarray:
    """(W,) int32 pieces per word."""
    words = tokens.words() if isinstance(tokens, Tokens) else [t.text for t in tokens]
    word_ids = wordpiece.word_ids
    return np.fromiter((len(word_ids(w)) for w in words), np.int32, len(words))


def _may_hold_sentences(text: str, tokens: Sequence[Token]) -> bool:
    """Whether a boundary is possible: a word before the last ends a sentence or a line."""
    last = tokens[-1].start
    return text.find("\n", 0, last) >= 0 or _FINAL.search(text, 0, last) is not None
