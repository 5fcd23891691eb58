"""What the segmenter reads and how its scores become sentences."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from app.model.featurize import WordPiece
from app.model.segment import (
    SHORT_LINE,
    SPACE_INSIDE,
    SPACE_LINE,
    SPACE_NONE,
    SPACE_PARAGRAPH,
    SPACE_SPACE,
    SPACE_START,
    cut_long,
    sentence_starts,
    short_line_starts,
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


def _short_lines(text: str, starts: list[int]) -> list[str]:
    tokens = tokenize(text)
    found = short_line_starts(text, np.frombuffer(tokens.starts, np.int32), np.array(starts))
    return [tokens[i].text for i in found.tolist()]


def test_short_lines_after_short_lines_start_sentences():
    signature = "Best regards,\nMichael Chen\nSenior Analyst | Globex Inc.\r\nPhone: 555-1234"
    assert _short_lines(signature, [0, 3]) == ["Best", "Michael", "Senior", "Phone"]
    assert _short_lines("Jane Doe\n\n  Acme Corp", [0]) == ["Jane", "Acme"]  # blank line, spaces


def test_wrapped_prose_and_lines_going_on_in_lower_case_stay_whole():
    wrapped = (
        "A sentence wrapped by a mail client at seventy characters, so that its\nbreaks fall in it."
    )
    assert _short_lines(wrapped, [0]) == ["A"]
    assert _short_lines("Please call me\nwhen you land", [0]) == ["Please"]
    long_after = "See you\nTomorrow morning at the station near the old bridge, as we said."
    assert _short_lines(long_after, [0]) == ["See"]
    assert _short_lines("x" * SHORT_LINE + "\nBob", [0]) == ["x" * SHORT_LINE, "Bob"]
    assert _short_lines("x" * (SHORT_LINE + 1) + "\nBob", [0]) == ["x" * (SHORT_LINE + 1)]
    assert _short_lines("No breaks at all. None.", [0, 5]) == ["No", "None"]


@given(
    st.lists(
        st.sampled_from(["Bob", "ann", "Acme Corp", "x.", "\n", "\n\n", " ", "  \n "]), max_size=30
    )
)
def test_short_line_starts_keep_the_segmenters_and_stay_words(parts):
    text = "".join(parts)
    tokens = tokenize(text)
    given_starts = np.array([0] if len(tokens) else [], dtype=np.int64)
    found = short_line_starts(text, np.frombuffer(tokens.starts, np.int32), given_starts)
    assert set(given_starts.tolist()) <= set(found.tolist())
    assert found.tolist() == sorted(set(found.tolist()))
    assert all(0 <= i < len(tokens) for i in found.tolist())
    for i in found.tolist()[len(given_starts) :]:  # each new one begins a line
        assert "\n" in text[tokens[i - 1].end : tokens[i].start]


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
