"""Running text -> sentences: what the segmenter reads, how a long text is cut into windows,
and how its per-word boundary scores become sentences.

The segmenter is a small BiGRU over the same WordPiece ids and case classes the tagger reads,
plus what tokenizing throws away: the whitespace before each word. It scores each word as the
start of a sentence. A text of any length is read in overlapping windows of pieces, each word
scored by the window in which it sits furthest from an edge.
"""

from __future__ import annotations

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
    """A whole text as the segmenter reads it: pieces and their case and space classes."""

    input_ids: np.ndarray  # (T,) int64
    case_ids: np.ndarray  # (T,) int64
    space_ids: np.ndarray  # (T,) int64
    word_starts: np.ndarray  # (W,) int64 each word's first piece
    piece_counts: np.ndarray  # (W,) int64 pieces per word


def text_features(text: str, tokens: Sequence[Token], wp: WordPiece) -> TextFeatures:
    ids: list[int] = []
    cases: list[int] = []
    spaces: list[int] = []
    counts: list[int] = []
    prev_end = -1
    for tok in tokens:
        pieces = wp.word_ids(tok.text)
        ids.extend(pieces)
        cases.extend([case_class(tok.text)] * len(pieces))
        spaces.append(space_class(text, prev_end, tok.start))
        spaces.extend([SPACE_INSIDE] * (len(pieces) - 1))
        counts.append(len(pieces))
        prev_end = tok.end
    counts_arr = np.asarray(counts, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts_arr)[:-1]]) if counts else counts_arr
    return TextFeatures(
        np.asarray(ids, dtype=np.int64),
        np.asarray(cases, dtype=np.int64),
        np.asarray(spaces, dtype=np.int64),
        starts.astype(np.int64),
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


def sentence_starts(scores: np.ndarray, threshold: float = 0.0) -> list[int]:
    """Word indices that start a sentence: the first word always, then each scored above."""
    if len(scores) == 0:
        return []
    return [0, *(int(i) for i in np.flatnonzero(scores[1:] > threshold) + 1)]


def cut_long(starts: list[int], n_words: int, piece_counts: np.ndarray, limit: int) -> list[int]:
    """More starts, so that no sentence has over `limit` pieces: a run with no boundary is cut
    into windows of whole words."""
    out = []
    bounds = [*starts, n_words]
    for a, b in zip(bounds, bounds[1:], strict=False):
        out.append(a)
        total = 0
        for i in range(a, b):
            if total + piece_counts[i] > limit and i > a and total > 0:
                out.append(i)
                total = 0
            total += int(piece_counts[i])
    return out
