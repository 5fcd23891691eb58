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
    assert sentence_starts(np.array([-9.0, 3.0, -1.0, 0.5])) == [0, 1, 3]
    assert sentence_starts(np.zeros(0)) == []


def test_a_long_run_is_cut_into_windows_of_whole_words():
    counts = np.array([2, 2, 2, 2, 2, 1])
    assert cut_long([0], 6, counts, limit=4) == [0, 2, 4]
    assert cut_long([0, 3], 6, counts, limit=100) == [0, 3]
