"""Running text of any length -> sentences, and many sentences fed to the batcher as room frees.

A text is split where the segmenter (segmenter.onnx, app.model.segment) scores a sentence
start; a text with no sentence-final punctuation and no line break before its last word is one
sentence and skips it. A run of words with no boundary that is over the per-sentence limits is
cut into windows of whole words. A request with more sentences than a batch holds goes in the
batcher's bulk lane, so it does not hold up one-sentence requests, and in parts of at most a
sixteenth of the queue, two at a time: a document is never refused for its size alone, while a
full queue still refuses new work (OverloadedError, 429).
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from app.config import Settings
from app.core.batcher import Batcher
from app.core.errors import InputTooLargeError, OverloadedError
from app.core.off_loop import OffLoop
from app.model.featurize import Features, WordPiece
from app.model.segment import (
    cut_long,
    sentence_starts,
    text_features,
    windows,
    word_scores,
)
from app.model.text import Token

_FINAL = re.compile(r"[.!?…]")
_NO_WORDS = np.zeros(0, dtype=np.int64)
_ON_LOOP_WORDS = 2000  # a text of more words is counted and featurized on the off-loop thread
_R = TypeVar("_R")
_FIRST_ONLY = np.zeros(1, dtype=np.int64)


async def feed(batcher: Batcher, task: str, features: Sequence[Features]) -> list[Any]:
    """Every result of `features`, in order; see the module's note for how they are queued."""
    bulk = len(features) > batcher.limits.max_batch_size
    part = max(1, batcher.limits.max_queue // 16)
    if len(features) <= part:
        return await batcher.submit(task, features, bulk)
    results: list[Any] = []
    pending: deque[asyncio.Future[list[Any]]] = deque()
    try:
        for i in range(0, len(features), part):
            while True:
                try:
                    pending.append(batcher.submit(task, features[i : i + part], bulk))
                    break
                except OverloadedError:
                    if not pending:  # nothing of ours to wait for: the service is full
                        raise
                    results += await pending.popleft()
            if len(pending) == 2:
                results += await pending.popleft()
        while pending:
            results += await pending.popleft()
    finally:
        for future in pending:  # cancelled or failed: the rest is skipped, not run for nobody
            future.cancel()
    return results


class Splitter:
    """Sentences of raw text, by the model's segmenter (if it has one) and the size limits."""

    def __init__(
        self,
        batcher: Batcher,
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
        logits = await feed(self.batcher, "segment", parts)
        assert self.threshold is not None
        return sentence_starts(word_scores(f, wins, logits), self.threshold)


def _piece_counts(tokens: Sequence[Token], wordpiece: WordPiece) -> np.ndarray:
    """(W,) int32 pieces per word."""
    return np.fromiter((len(wordpiece.word_ids(t.text)) for t in tokens), np.int32, len(tokens))


def _may_hold_sentences(text: str, tokens: Sequence[Token]) -> bool:
    """Whether a boundary is possible: a word before the last ends a sentence or a line."""
    last = tokens[-1].start
    return text.find("\n", 0, last) >= 0 or _FINAL.search(text, 0, last) is not None
