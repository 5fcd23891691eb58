"""A request's sentences in runs (app.core.runs): every sentence once, in order, each run
within its size, and its parts joined the same answer as a request of one run."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from app.core import runs
from app.core.runs import Input, _runs
from app.model.text import Token


def inputs(sizes: list[list[int]]) -> list[Input]:
    """Inputs whose sentences have `sizes` words each."""
    made = []
    for sentence_sizes in sizes:
        starts = np.cumsum([0, *sentence_sizes[:-1]]).astype(np.int64) if sentence_sizes else []
        tokens = [Token("w", -1, -1)] * sum(sentence_sizes)
        made.append(Input(tokens, None, np.asarray(starts, dtype=np.int64)))
    return made


@given(
    st.lists(st.lists(st.integers(1, 40), max_size=12), min_size=1, max_size=6),
    st.integers(1, 60),
    st.integers(1, 5),
)
def test_runs_hold_every_sentence_once_in_order_within_their_size(
    sizes: list[list[int]], words: int, most: int
) -> None:
    items = inputs(sizes)
    runs.RUN_WORDS, saved = words, runs.RUN_WORDS
    try:
        found = list(_runs(items, most))
    finally:
        runs.RUN_WORDS = saved
    pieces = [piece for run in found for piece in run]
    covered = [(i, k) for i, first, end in pieces for k in range(first, end)]
    assert covered == [(i, k) for i, s in enumerate(sizes) for k in range(len(s))]
    assert [i for i, _, _ in pieces if not sizes[i]] == [i for i, s in enumerate(sizes) if not s]
    for run in found:
        counts = [sizes[i][k] for i, first, end in run for k in range(first, end)]
        assert len(counts) <= most
        assert sum(counts) <= words or len(counts) == 1


def test_bounds_are_each_sentences_tokens() -> None:
    [item] = inputs([[3, 1, 2]])
    assert item.bounds(0, 3) == [(0, 3), (3, 4), (4, 6)]
    assert item.bounds(1, 2) == [(3, 4)]
    assert item.bounds(2, 2) == []
    assert inputs([[]])[0].bounds(0, 0) == []
