"""Words -> model inputs: WordPiece ids, a case class per piece, lengths. numpy only.

This is the one featurizer: the service and the training code both import it, so the
model sees at serve time exactly what it saw in training. The sentence encoder's input can
also come straight from raw text (`text_pieces`, the same ids from a per-chunk cache).

The vocabulary is all-MiniLM-L6-v2's (BERT uncased) WordPiece list, so the casing a
lowercasing vocabulary throws away comes back as a small per-piece case feature taken
from the word the piece belongs to. Each word is labelled by its first piece.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from app.model.text import chunk_words, chunks

PAD_ID = 0  # "[PAD]" in the BERT vocabulary
UNK = "[UNK]"
MAX_CHARS_PER_WORD = 100  # as BERT's WordPiece: longer words become one [UNK]

# Case classes (0 is padding).
CASE_LOWER, CASE_TITLE, CASE_UPPER, CASE_MIXED, CASE_NONE = 1, 2, 3, 4, 5
NUM_CASE_CLASSES = 6


@lru_cache(maxsize=65_536)  # words repeat: a request's sentences share most of theirs
def case_class(word: str) -> int:
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return CASE_NONE
    if all(c.islower() for c in letters):
        return CASE_LOWER
    if all(c.isupper() for c in letters):
        return CASE_UPPER if len(letters) > 1 else CASE_TITLE
    if letters[0].isupper() and all(c.islower() for c in letters[1:]):
        return CASE_TITLE
    return CASE_MIXED


# BERT's CJK ideograph blocks (its `_is_chinese_char`): each such character is a word of its own.
# Checked after NFD, which maps the compatibility ideographs into the unified blocks.
_CJK_RANGES = (
    (0x3400, 0x4DBF),  # Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xF900, 0xFAFF),  # Compatibility Ideographs
    (0x20000, 0x2A6DF),  # Extension B
    (0x2A700, 0x2B73F),  # Extension C
    (0x2B740, 0x2B81F),  # Extension D
    (0x2B820, 0x2CEAF),  # Extension E
    (0x2F800, 0x2FA1F),  # Compatibility Ideographs Supplement
)


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return cp >= 0x3400 and any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _basic_split(word: str) -> list[str]:
    """BERT uncased basic tokenization of one word: clean, lowercase, strip accents,
    split off punctuation and CJK characters."""
    text = unicodedata.normalize("NFD", word.lower())
    parts: list[str] = []
    current: list[str] = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat == "Mn" or ch == "\ufffd" or (cat.startswith("C") and ch not in "\t\n\r"):
            continue  # accents, replacement and control/format/surrogate chars are dropped
        if ch.isspace():
            if current:
                parts.append("".join(current))
                current = []
        elif _is_punctuation(ch) or _is_cjk(ch):
            if current:
                parts.append("".join(current))
                current = []
            parts.append(ch)
        else:
            current.append(ch)
    if current:
        parts.append("".join(current))
    return parts


class WordPiece:
    """Greedy longest-match-first WordPiece over a BERT vocabulary file."""

    def __init__(self, vocab: list[str]) -> None:
        self.vocab = {piece: i for i, piece in enumerate(vocab)}
        self.unk_id = self.vocab[UNK]
        self.word_ids = lru_cache(maxsize=200_000)(self._word_ids)
        self.chunk_ids = lru_cache(maxsize=100_000)(self._chunk_ids)

    @classmethod
    def from_file(cls, path: Path) -> WordPiece:
        return cls(path.read_text(encoding="utf-8").splitlines())

    def _word_ids(self, word: str) -> tuple[int, ...]:
        """Piece ids of one word; never empty (a word with nothing left is one [UNK])."""
        ids: list[int] = []
        for part in _basic_split(word):
            ids.extend(self._wordpiece(part))
        return tuple(ids) or (self.unk_id,)

    def _chunk_ids(self, chunk: str) -> tuple[tuple[int, ...], int]:
        """Piece ids and word count of one whitespace-free chunk of text (`text.chunks`)."""
        words = chunk_words(chunk)
        return tuple(i for word in words for i in self.word_ids(word)), len(words)

    def _wordpiece(self, part: str) -> list[int]:
        if len(part) > MAX_CHARS_PER_WORD:
            return [self.unk_id]
        ids, start = [], 0
        while start < len(part):
            end = len(part)
            while end > start:
                piece = part[start:end] if start == 0 else "##" + part[start:end]
                if piece in self.vocab:
                    ids.append(self.vocab[piece])
                    break
                end -= 1
            else:
                return [self.unk_id]
            start = end
        return ids


@dataclass(frozen=True)
class Features:
    """One sentence, ready to batch."""

    input_ids: np.ndarray  # (T,) int64 piece ids
    case_ids: np.ndarray  # (T,) int64 case class of each piece's word
    word_starts: np.ndarray  # (W,) int64 index of each word's first piece
    space_ids: np.ndarray | None = None  # (T,) int64 what precedes each piece; segmenter only
    words: tuple[str, ...] = ()  # the words, for the decoder's lexicon; tag path only
    heads: frozenset[str] | None = None  # the heads its request asks for (None: every head)

    @property
    def length(self) -> int:
        return len(self.input_ids)


def featurize(
    words: list[str], wordpiece: WordPiece, heads: frozenset[str] | None = None
) -> Features:
    ids: list[int] = []
    cases: list[int] = []
    starts: list[int] = []
    for word in words:
        pieces = wordpiece.word_ids(word)
        starts.append(len(ids))
        ids.extend(pieces)
        cases.extend([case_class(word)] * len(pieces))
    return Features(
        np.asarray(ids, dtype=np.int64),
        np.asarray(cases, dtype=np.int64),
        np.asarray(starts, dtype=np.int64),
        words=tuple(words),
        heads=heads,
    )


_NO_WORDS = np.zeros(0, dtype=np.int64)


def featurize_pieces(words: list[str], wordpiece: WordPiece) -> Features:
    """Piece ids only, for the sentence encoder, which reads nothing else: case classes are left
    0 (as pads) and word starts empty."""
    return _pieces_only([i for word in words for i in wordpiece.word_ids(word)])


def _pieces_only(ids: list[int]) -> Features:
    return Features(np.asarray(ids, dtype=np.int64), np.zeros(len(ids), dtype=np.int64), _NO_WORDS)


def text_pieces(text: str, wordpiece: WordPiece) -> tuple[Features, int] | None:
    """`featurize_pieces(split_words(text))` straight from raw text, from ids cached per chunk
    (`the`, `Paris.`): a third of the time. With it the word count, or one less: a final
    abbreviation's period (`etc.` -> `etc .`) is a word of its own, but no piece of its own
    (WordPiece splits punctuation off anyway). None when only `split_words` knows the words
    (`text.chunks`)."""
    found = chunks(text)
    if found is None:
        return None
    ids: list[int] = []
    words = 0
    for chunk in found:
        chunk_ids, n = wordpiece.chunk_ids(chunk)
        ids += chunk_ids
        words += n
    return _pieces_only(ids), words


def pad_batch(batch: list[Features]) -> dict[str, np.ndarray]:
    """Right-pad to the longest sentence; these are the ONNX graph's inputs."""
    lengths = np.asarray([f.length for f in batch], dtype=np.int64)  # (B,)
    T = int(lengths.max()) if len(batch) else 0
    real = np.arange(T)[None, :] < lengths[:, None]  # (B, T), row by row as the pieces go
    input_ids = np.full((len(batch), T), PAD_ID, dtype=np.int64)  # (B, T)
    case_ids = np.zeros((len(batch), T), dtype=np.int64)  # (B, T)
    if batch:
        input_ids[real] = np.concatenate([f.input_ids for f in batch])
        case_ids[real] = np.concatenate([f.case_ids for f in batch])
    feeds = {"input_ids": input_ids, "case_ids": case_ids, "lengths": lengths}
    if batch and batch[0].space_ids is not None:  # the segmenter's windows
        space_ids = np.zeros((len(batch), T), dtype=np.int64)  # (B, T)
        space_ids[real] = np.concatenate([f.space_ids for f in batch])  # type: ignore[misc]
        feeds["space_ids"] = space_ids
    return feeds


def length_batches(
    features: list[Features], size: int
) -> Iterator[tuple[list[int], dict[str, np.ndarray]]]:
    """(indices, padded batch) of `features` in chunks of `size`, shortest first, so each batch
    wastes little on padding; the caller puts each batch's results back at its indices."""
    order = sorted(range(len(features)), key=lambda i: features[i].length)
    for j in range(0, len(order), size):
        idx = order[j : j + size]
        yield idx, pad_batch([features[i] for i in idx])
