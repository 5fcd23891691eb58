"""A request's sentences tagged in runs of bounded size, so that what a request holds at once
does not grow with its length.

The sentences of all its inputs, in order, are cut into runs of at most `RUN_WORDS` words and a
sixteenth of the queue's sentences (a longer sentence is a run of its own). Each run is featurized,
queued, awaited and assembled into `TaggedPart`s, one per input it touches; two runs are in
flight at once, so the batcher always has the next one while a part is written out. A request
with more sentences than a batch holds goes in the batcher's bulk lane, so it does not hold up
one-sentence requests. A run that finds the queue full waits for room once the request has
begun (its answer may be on the wire); only a request's first run is refused (429).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.core.answers import Assembler, Entity, Sentence, TaggedText, TaggedToken
from app.core.batcher import ModelBatcher
from app.core.errors import OverloadedError
from app.model.decode import WordTags
from app.model.featurize import WordPiece, featurize
from app.model.text import Token, Tokens

RUN_WORDS = 2048  # words a run holds; ~100 sentences of EWT, a few batches
QUEUE_SHARE = 16  # a run holds at most this fraction of the queue's sentences (128 by default)
_ON_LOOP_WORDS = 256  # a larger run is assembled on a worker thread, so the loop serves others


@dataclass(frozen=True)
class Input:
    """One input of a request: its tokens, its text (None: pre-tokenized) and its sentences,
    by the index of each one's first token (a million sentences are 8 MB, not 150)."""

    tokens: Tokens | list[Token]
    text: str | None
    starts: np.ndarray  # (S,) int64

    @property
    def sentences(self) -> int:
        return len(self.starts)

    def bounds(self, first: int, end: int) -> list[tuple[int, int]]:
        """Sentences [first, end) as the [start, end) of their tokens."""
        if first == end:
            return []
        stops = self.starts[first + 1 : end + 1].tolist()
        if end == len(self.starts):
            stops.append(len(self.tokens))
        return list(zip(self.starts[first:end].tolist(), stops, strict=True))


@dataclass(frozen=True)
class TaggedPart:
    """A run of one input's sentences, tagged: what an answer writes at a time. Token indices
    in `tagged`'s entities and sentences count from the input's first token."""

    index: int  # the input's place in the request
    tagged: TaggedText  # the part's tokens, and the entities and sentences among them
    first_token: int  # the input's index of tagged.tokens[0]
    next_start: int | None  # where the input's next token starts; None: no next token, or
    # pre-tokenized
    last: bool  # the input's last part


_Piece = tuple[int, int, int]  # (input, first sentence, end sentence) of a run
OffLoopRun = Callable[..., Awaitable[Any]]  # runs a function off the event loop


def _runs(inputs: Sequence[Input], most: int) -> Iterator[list[_Piece]]:
    """The runs of at most `most` sentences, in order; an input with no sentences is an empty
    piece of the run it falls in."""
    run: list[_Piece] = []
    words = sentences = 0
    for i, item in enumerate(inputs):
        first = 0
        for k, size in enumerate(_sizes(item)):
            if sentences and (words + size > RUN_WORDS or sentences == most):
                if k > first:
                    run.append((i, first, k))
                    first = k
                yield run
                run, words, sentences = [], 0, 0
            words += size
            sentences += 1
        run.append((i, first, item.sentences))
    if run:
        yield run


def _sizes(item: Input, chunk: int = 4096) -> Iterator[int]:
    """Each sentence's word count, made into Python ints a chunk at a time."""
    if len(item.starts) == 1:  # most inputs: no array work for one number
        yield len(item.tokens) - int(item.starts[0])
        return
    sizes = np.diff(item.starts, append=len(item.tokens))  # (S,)
    for c in range(0, len(sizes), chunk):
        yield from sizes[c : c + chunk].tolist()


async def tag_runs(
    inputs: Sequence[Input],
    heads: list[str] | None,
    batcher: ModelBatcher,
    wordpiece: WordPiece,
    assembler: Assembler,
    off_loop: OffLoopRun,
) -> AsyncIterator[list[TaggedPart]]:
    """Each run's parts, in order; every sentence is within the size limits already. A large
    run is assembled by `off_loop`, so the event loop goes on serving others. No heads (`[]`):
    tokens and sentences only, and the tagger does not run."""
    if heads == []:
        for run in _runs(inputs, RUN_WORDS):
            yield _untagged(inputs, assembler, run)
        return
    wanted = None if heads is None else frozenset(heads)
    bulk = sum(item.sentences for item in inputs) > batcher.limits.max_batch_size
    pending: deque[tuple[list[_Piece], int, asyncio.Future[list[WordTags]]]] = deque()
    started = False
    try:
        for run in _runs(inputs, max(1, batcher.limits.max_queue // QUEUE_SHARE)):
            features = [
                featurize(_words(inputs[i].tokens, a, b), wordpiece, wanted)
                for i, first, end in run
                for a, b in inputs[i].bounds(first, end)
            ]
            words = sum(len(f.word_starts) for f in features)
            while True:
                try:
                    pending.append((run, words, batcher.submit("tag", features, bulk)))
                    break
                except OverloadedError:
                    if pending:  # our own earlier run frees room; write it meanwhile
                        yield await _parts(inputs, heads, assembler, off_loop, *pending.popleft())
                    elif started:
                        await batcher.room()
                    else:
                        raise
            started = True
            if len(pending) == 2:
                yield await _parts(inputs, heads, assembler, off_loop, *pending.popleft())
        while pending:
            yield await _parts(inputs, heads, assembler, off_loop, *pending.popleft())
    finally:
        for _, _, future in pending:  # the answer was dropped: its queued runs are skipped
            future.cancel()


def _untagged(inputs: Sequence[Input], assembler: Assembler, run: list[_Piece]) -> list[TaggedPart]:
    """A run's parts with no head's tags: each sentence's tags are empty."""
    count = sum(len(inputs[i].bounds(first, end)) for i, first, end in run)
    return _assemble(inputs, [], assembler, run, [{}] * count)


def _words(tokens: Tokens | list[Token], a: int, b: int) -> list[str]:
    if isinstance(tokens, Tokens):
        return tokens.words(a, b)
    return [t.text for t in tokens[a:b]]


async def _parts(
    inputs: Sequence[Input],
    heads: list[str] | None,
    assembler: Assembler,
    off_loop: OffLoopRun,
    run: list[_Piece],
    words: int,
    future: asyncio.Future[list[WordTags]],
) -> list[TaggedPart]:
    tags = await future
    if words <= _ON_LOOP_WORDS:
        return _assemble(inputs, heads, assembler, run, tags)
    return await off_loop(_assemble, inputs, heads, assembler, run, tags)


def _assemble(
    inputs: Sequence[Input],
    heads: list[str] | None,
    assembler: Assembler,
    run: list[_Piece],
    tags: list[WordTags],
) -> list[TaggedPart]:
    parts = []
    at = 0
    for i, first, end in run:
        item = inputs[i]
        bounds = item.bounds(first, end)
        tagged = assembler.text(item.tokens, item.text, bounds, tags[at : at + len(bounds)], heads)
        at += len(bounds)
        stop = bounds[-1][1] if bounds else 0
        raw = item.text is not None and stop < len(item.tokens)
        following = item.tokens[stop].start if raw else None
        first_token = bounds[0][0] if bounds else 0
        parts.append(TaggedPart(i, tagged, first_token, following, end == item.sentences))
    return parts


async def collect(parts: AsyncIterator[list[TaggedPart]], count: int) -> list[TaggedText]:
    """Each of `count` inputs' whole answer, from its parts (for answers known to be small)."""
    tokens: list[list[TaggedToken]] = [[] for _ in range(count)]
    entities: list[list[Entity]] = [[] for _ in range(count)]
    sentences: list[list[Sentence]] = [[] for _ in range(count)]
    async for group in parts:
        for part in group:
            tokens[part.index] += part.tagged.tokens
            entities[part.index] += part.tagged.entities
            sentences[part.index] += part.tagged.sentences
    return [TaggedText(*fields) for fields in zip(tokens, entities, sentences, strict=True)]
