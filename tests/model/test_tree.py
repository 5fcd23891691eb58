"""The tree decoder: one root, no cycles, every head inside the sentence; the best such tree when
every root child is tried (checked against every tree of small sentences), and a bounded number
of Chu-Liu/Edmonds runs however many words want the root."""

from __future__ import annotations

import itertools
import tracemalloc
from unittest.mock import patch

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from app.model import tree as tree_module
from app.model.tree import tree


def well_formed(heads: np.ndarray) -> bool:
    n = len(heads) - 1
    if heads[0] != 0 or np.count_nonzero(heads[1:] == 0) != 1:
        return False
    if not all(0 <= h <= n and h != i for i, h in enumerate(heads[1:], 1)):
        return False
    for start in range(1, n + 1):  # every word reaches the root within n steps
        node, steps = start, 0
        while node != 0 and steps <= n:
            node, steps = heads[node], steps + 1
        if node != 0:
            return False
    return True


def total(scores: np.ndarray, heads: np.ndarray) -> float:
    return float(scores[np.arange(1, len(heads)), heads[1:]].sum())


def best_by_brute_force(scores: np.ndarray) -> float:
    n = len(scores) - 1
    best = -np.inf
    for choice in itertools.product(range(n + 1), repeat=n):
        heads = np.array([0, *choice])
        if well_formed(heads):
            best = max(best, total(scores, heads))
    return best


def score_matrices(max_words: int) -> st.SearchStrategy[np.ndarray]:
    return st.integers(1, max_words).flatmap(
        lambda n: arrays(np.float64, (n + 1, n + 1), elements=st.floats(-5, 5, width=32))
    )


@settings(max_examples=150, deadline=None)
@given(score_matrices(5))
def test_the_tree_is_well_formed_and_the_best_when_every_root_child_is_tried(
    scores: np.ndarray,
) -> None:
    assert well_formed(tree(scores))
    with patch.object(tree_module, "ROOT_CANDIDATES", len(scores)):
        heads = tree(scores)
    assert total(scores, heads) >= best_by_brute_force(scores) - 1e-9


def test_many_words_wanting_the_root_cost_a_bounded_number_of_runs() -> None:
    n = tree_module.EXACT_WORDS
    scores = np.random.default_rng(0).normal(size=(n + 1, n + 1))
    scores[1:, 0] = 10.0  # every word's best head is the root
    runs = []
    real = tree_module._chu_liu_edmonds
    with patch.object(tree_module, "_chu_liu_edmonds", lambda s: runs.append(len(s)) or real(s)):
        heads = tree(scores)
    assert well_formed(heads)
    assert runs.count(n + 1) == 1 + tree_module.ROOT_CANDIDATES  # its contractions are smaller


@settings(max_examples=50, deadline=None)
@given(score_matrices(40))
def test_long_sentences_get_a_well_formed_tree(scores: np.ndarray) -> None:
    assert well_formed(tree(scores))


def test_a_best_choice_that_is_a_tree_is_kept() -> None:
    scores = np.full((4, 4), -10.0)
    scores[1, 2] = scores[2, 0] = scores[3, 2] = 0.0  # "the cat sat": 1 <- 2, 2 root, 3 <- 2
    assert tree(scores).tolist() == [0, 2, 0, 2]


def test_two_roots_and_a_cycle_are_repaired() -> None:
    scores = np.full((5, 5), -10.0)
    scores[1, 0] = scores[2, 0] = 0.0  # two words want the root
    scores[3, 4] = scores[4, 3] = 0.0  # two words want each other
    scores[2, 1] = -1.0
    scores[3, 1] = -2.0
    heads = tree(scores)
    assert well_formed(heads) and heads.tolist() == [0, 0, 1, 1, 3]


@settings(max_examples=30, deadline=None)
@given(
    st.integers(101, 400).flatmap(
        lambda n: arrays(np.float64, (n + 1, n + 1), elements=st.floats(-5, 5, width=32))
    )
)
def test_sentences_over_the_exact_limit_get_a_tree_without_chu_liu_edmonds(
    scores: np.ndarray,
) -> None:
    with patch.object(tree_module, "_chu_liu_edmonds", side_effect=AssertionError("not run")):
        heads = tree(scores)
    assert well_formed(heads)


def test_a_tree_of_many_cycles_holds_one_score_matrix_at_a_time() -> None:
    """Every word's best head is its neighbour's: n/2 two-word cycles, contracted one by one,
    in memory for about one matrix (each contraction's kept, n^3 bytes in all, would not be)."""
    n = tree_module.EXACT_WORDS
    scores = np.full((n + 1, n + 1), -10.0)
    for i in range(1, n, 2):
        scores[i, i + 1] = scores[i + 1, i] = 0.0
    scores[1:, 0] = -5.0
    tracemalloc.start()
    heads = tree(scores)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert well_formed(heads)
    assert peak < 8 * scores.nbytes
