"""What the segmenter reads and how its scores become sentences."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from app.model.featurize import WordPiece
from app.model.segment import (
    SPACE_INSIDE,
    SPACE_LINE,
    SPACE_NONE,
    SPACE_PARAGRAPH,
    SPACE_SPACE,
    SPACE_START,
    cut_long,
    sentence_starts,
    text_features,
    windows,
)
from app.model.text import tokenize


def test_space_classes_say_what_preceded_each_word(model_dir):
    text = "Hi there,\nyou.\n\nBye"
    f = text_features(text, tokenize(text), WordPiece.from_file(model_dir / "vocab.txt"))
    firsts = f.space_ids[f.word_starts].tolist()
    assert firsts == [SPACE_START, SPACE_SPACE, SPACE_NONE, SPACE_LINE, SPACE_NONE, SPACE_PARAGRAPH]
    inside = np.setdiff1d(np.arange(len(f.input_ids)), f.word_starts)
    assert (f.space_ids[inside] == SPACE_INSIDE).all()
    assert f.piece_counts.sum() == len(f.input_ids)


@given(st.integers(1, 3000), st.integers(8, 300), st.integers(0, 40))
def test_windows_keep_every_piece_once_within_their_size(n, size, margin):
    margin = min(margin, (size - 1) // 2)
    wins = windows(n, size, margin)
    kept = [i for w in wins for i in range(w.keep_start, w.keep_end)]
    assert kept == list(range(n))
    for w in wins:
        assert 0 <= w.start <= w.keep_start < w.keep_end <= w.end <= n
        assert w.end - w.start <= size
        # context on both sides of the kept part, except at the text's edges
        assert w.keep_start == 0 or w.keep_start - w.start >= margin
        assert w.keep_end == n or w.end - w.keep_end >= margin


def test_the_first_word_always_starts_a_sentence():
    assert sentence_starts(np.array([-9.0, 3.0, -1.0, 0.5])).tolist() == [0, 1, 3]
    assert sentence_starts(np.zeros(0)).tolist() == []


def test_a_long_run_is_cut_into_windows_of_whole_words():
    counts = np.array([2, 2, 2, 2, 2, 1])
    assert cut_long(np.array([0]), 6, 4, counts).tolist() == [0, 2, 4]
    assert cut_long(np.array([0, 3]), 6, 100, counts).tolist() == [0, 3]
    assert cut_long(np.array([0, 3]), 10, 3).tolist() == [0, 3, 6, 9]  # words, no counts
    assert cut_long(np.array([0]), 3, 4, np.array([1, 9, 1])).tolist() == [0, 1, 2]


def _cut_one_word_at_a_time(starts: list[int], n: int, counts: list[int], limit: int) -> list[int]:
    """The rule cut_long follows, word by word."""
    out = []
    for a, b in zip(starts, [*starts[1:], n], strict=True):
        out.append(a)
        total = 0
        for i in range(a, b):
            if total + counts[i] > limit and i > a and total > 0:
                out.append(i)
                total = 0
            total += counts[i]
    return out


@given(
    st.lists(st.integers(1, 9), min_size=1, max_size=60),
    st.integers(1, 12),
    st.data(),
)
def test_cut_long_cuts_as_the_word_by_word_rule(counts: list[int], limit: int, data) -> None:
    n = len(counts)
    starts = sorted({0, *data.draw(st.lists(st.integers(0, n - 1), max_size=8))})
    want = _cut_one_word_at_a_time(starts, n, counts, limit)
    assert cut_long(np.array(starts), n, limit, np.array(counts)).tolist() == want
    assert cut_long(np.array(starts), n, limit).tolist() == _cut_one_word_at_a_time(
        starts, n, [1] * n, limit
    )
