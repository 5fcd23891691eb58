"""Running text -> sentences: what the segmenter reads, how a long text is cut into windows,
and how its per-word boundary scores become sentences.

The segmenter is a small BiGRU over the same WordPiece ids and case classes the tagger reads,
plus what tokenizing throws away: the whitespace before each word. It scores each word as the
start of a sentence. A text of any length is read in overlapping windows of pieces, each word
scored by the window in which it sits furthest from an edge.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.model.featurize import WordPiece, case_class
from app.model.text import Token

# What precedes a piece (0 is padding): the text's start, no space (`Qaim,`), spaces, one line
# break, a blank line; and the pieces after a word's first.
SPACE_START, SPACE_NONE, SPACE_SPACE, SPACE_LINE, SPACE_PARAGRAPH, SPACE_INSIDE = 1, 2, 3, 4, 5, 6
NUM_SPACE_CLASSES = 7
WINDOW = 256  # pieces per segmenter run
MARGIN = 32  # context on each side of the scored part of a window
# A line of at most this many characters is a signature's, an address's or a heading's, not a
# line of wrapped prose (mail clients wrap at 70-80)
SHORT_LINE = 40
_LINE_BREAKS = re.compile(r"[ \t\r\f\v]*\n\s*")


def space_class(text: str, prev_end: int, start: int) -> int:
    if prev_end < 0:
        return SPACE_START
    gap = text[prev_end:start]
    if not gap:
        return SPACE_NONE
    lines = gap.count("\n")
    return SPACE_SPACE if lines == 0 else SPACE_LINE if lines == 1 else SPACE_PARAGRAPH


@dataclass(frozen=True)
class TextFeatures:
    """A whole text as the segmenter reads it: pieces and their case and space classes, in the
    narrowest types that hold them (a 2 MB text may have 2,000,000 pieces); a batch widens
    them to the graph's int64 when it pads."""

    input_ids: np.ndarray  # (T,) int32
    case_ids: np.ndarray  # (T,) int8
    space_ids: np.ndarray  # (T,) int8
    word_starts: np.ndarray  # (W,) int64 each word's first piece
    piece_counts: np.ndarray  # (W,) int32 pieces per word


def text_features(text: str, tokens: Sequence[Token], wp: WordPiece) -> TextFeatures:
    ids, cases, spaces, counts = array("i"), array("b"), array("b"), array("i")
    prev_end = -1
    for tok in tokens:
        pieces = wp.word_ids(tok.text)
        ids.extend(pieces)
        cases.extend([case_class(tok.text)] * len(pieces))
        spaces.append(space_class(text, prev_end, tok.start))
        spaces.extend([SPACE_INSIDE] * (len(pieces) - 1))
        counts.append(len(pieces))
        prev_end = tok.end
    counts_arr = np.frombuffer(counts, dtype=np.int32)
    starts = np.zeros(len(counts_arr), dtype=np.int64)
    np.cumsum(counts_arr[:-1], out=starts[1:])
    return TextFeatures(
        np.frombuffer(ids, dtype=np.int32),
        np.frombuffer(cases, dtype=np.int8),
        np.frombuffer(spaces, dtype=np.int8),
        starts,
        counts_arr,
    )


@dataclass(frozen=True)
class Window:
    """Pieces [start, end) of a text, run together; its scores count for [keep_start, keep_end)."""

    start: int
    end: int
    keep_start: int
    keep_end: int


def windows(n_pieces: int, size: int = WINDOW, margin: int = MARGIN) -> list[Window]:
    """Windows of at most `size` pieces that tile [0, n) in their kept parts; each kept part has
    `margin` pieces of context on both sides, except at the text's edges."""
    if n_pieces <= size:
        return [Window(0, n_pieces, 0, n_pieces)]
    out = []
    keep = 0
    while keep < n_pieces:
        start = max(0, min(keep - margin, n_pieces - size))
        end = min(start + size, n_pieces)
        keep_end = n_pieces if end == n_pieces else end - margin
        out.append(Window(start, end, keep, keep_end))
        keep = keep_end
    return out


def word_scores(f: TextFeatures, wins: list[Window], logits: list[np.ndarray]) -> np.ndarray:
    """(W,) each word's boundary logit, from the window that keeps its first piece."""
    piece = np.empty(len(f.input_ids), dtype=np.float32)
    for w, out in zip(wins, logits, strict=True):
        piece[w.keep_start : w.keep_end] = out[w.keep_start - w.start : w.keep_end - w.start]
    return piece[f.word_starts]


def sentence_starts(scores: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """(S,) int64 word indices that start a sentence: the first word always, then each scored
    above the threshold."""
    if len(scores) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([[0], np.flatnonzero(scores[1:] > threshold) + 1]).astype(np.int64)


def short_line_starts(text: str, token_starts: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """`starts` with more: each line of at most SHORT_LINE characters that follows another such
    line and does not begin in lower case starts a sentence. The segmenter, trained on running
    text, reads a signature block (`Michael Chen` / `Senior Analyst | Globex Inc.`) as one
    sentence; wrapped prose has long lines, and a wrapped line goes on in lower case.
    `token_starts` (W,): each word's first character."""
    more = array("i")  # int32, no object per line: a 2 MB text may have a million lines
    line_start = 0  # the current line's (a break's spaces and blank lines are the break's)
    for m in _LINE_BREAKS.finditer(text):
        before = len(text[line_start : m.start()].strip())
        line_start = m.end()
        after = _next_line(text, line_start)
        if 0 < before <= SHORT_LINE and 0 < len(after) <= SHORT_LINE and not after[0].islower():
            more.append(line_start)
    if not more:
        return starts
    words = np.searchsorted(token_starts, np.frombuffer(more, np.int32), side="left")
    words = words[(words > 0) & (words < len(token_starts))]
    return np.union1d(starts, words).astype(np.int64)


def _next_line(text: str, start: int) -> str:
    """The line that begins at `start`, stripped; of a long one only its first characters,
    as only whether it is short matters."""
    end = text.find("\n", start, start + SHORT_LINE + 64)
    return text[start : end if end >= 0 else start + SHORT_LINE + 64].strip()


def cut_long(
    starts: np.ndarray, n_words: int, limit: int, piece_counts: np.ndarray | None = None
) -> np.ndarray:
    """More starts, so that no sentence has over `limit` pieces (`piece_counts` per word), or
    over `limit` words when no counts are given: a run with no boundary is cut greedily into
    windows of whole words; a word over the limit on its own is a sentence of its own."""
    ends = np.append(starts[1:], n_words)
    if piece_counts is None:
        over = np.flatnonzero(ends - starts > limit)
        cuts = [np.arange(starts[k] + limit, ends[k], limit) for k in over]
    else:
        cum = np.zeros(n_words + 1, dtype=np.int64)  # (W + 1,) pieces before each word
        np.cumsum(piece_counts, out=cum[1:])
        over = np.flatnonzero(cum[ends] - cum[starts] > limit)
        cuts = [_greedy_cuts(cum, int(starts[k]), int(ends[k]), limit) for k in over]
    if not cuts:
        return starts
    return np.sort(np.concatenate([starts, *cuts])).astype(np.int64)


def _greedy_cuts(cum: np.ndarray, a: int, b: int, limit: int) -> np.ndarray:
    """Where a sentence of words [a, b) is cut: each part takes words while they fit."""
    cuts = []
    start = a
    while True:
        end = int(np.searchsorted(cum, cum[start] + limit, side="right")) - 1  # last fitting
        end = max(end, start + 1)
        if end >= b:
            return np.asarray(cuts, dtype=np.int64)
        cuts.append(end)
        start = end
