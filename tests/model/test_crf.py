"""The CRF against brute force (every label path of short sentences enumerated), alone and in
padded batches, and its loop graphs as training/crf_graphs.py makes them."""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from app.model.crf import CRFDecoder
from app.model.decode import iob2_spans
from tests.helpers import NER_LABELS, ner_crf
from training import crf_graphs

N = len(NER_LABELS)


def _path_scores(crf: CRFDecoder, emissions: np.ndarray) -> dict[tuple[int, ...], float]:
    W = len(emissions)
    scores = {}
    for path in itertools.product(range(N), repeat=W):
        s = crf.start[path[0]] + emissions[0, path[0]] + crf.end[path[-1]]
        s += sum(
            crf.transitions[a, b] + emissions[t + 1, b]
            for t, (a, b) in enumerate(itertools.pairwise(path))
        )
        scores[path] = s
    return scores


@settings(max_examples=30, deadline=None)
@given(
    emissions=st.integers(1, 4).flatmap(
        lambda w: arrays(np.float64, (w, N), elements=st.floats(-8, 8))
    ),
    seed=st.integers(0, 1000),
)
def test_viterbi_and_marginals_match_brute_force(emissions: np.ndarray, seed: int) -> None:
    crf = ner_crf(seed)
    scores = _path_scores(crf, emissions)
    best = max(scores, key=scores.__getitem__)
    got = crf.viterbi(emissions)
    assert scores[tuple(got)] == pytest.approx(scores[best], abs=1e-9)
    values = np.array(list(scores.values()))
    probs = np.exp(values - values.max())
    probs /= probs.sum()
    expected = np.zeros((len(emissions), N))
    for p, path in zip(probs, scores, strict=True):
        expected[np.arange(len(path)), path] += p
    np.testing.assert_allclose(crf.marginals(emissions), expected, atol=1e-9)


def test_decoded_paths_are_valid_iob2() -> None:
    crf = CRFDecoder.build(NER_LABELS, np.zeros((N, N)), np.zeros(N), np.zeros(N))
    emissions = np.full((3, N), -5.0)
    emissions[:, NER_LABELS.index("I-PER")] = 5.0  # I-PER everywhere is what the scores want
    path = [NER_LABELS[i] for i in crf.viterbi(emissions)]
    assert path == ["B-PER", "I-PER", "I-PER"]
    assert iob2_spans(path)[0].label == "PER"


def test_marginals_survive_scores_too_far_apart_for_probability_space() -> None:
    crf = ner_crf(3)
    emissions = np.zeros((5, N))
    emissions[:, 0] = 2000.0  # every other label underflows to exactly 0 in probability space
    emissions[2] = -2000.0
    emissions[2, NER_LABELS.index("I-PER")] = 2000.0  # and the best label here is barred after O
    m = crf.marginals(emissions)
    assert np.isfinite(m).all()
    np.testing.assert_allclose(m.sum(1), 1.0)


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 9), min_size=1, max_size=6),
    seed=st.integers(0, 1000),
)
def test_a_padded_batch_decodes_each_sentence_as_alone(lengths: list[int], seed: int) -> None:
    """Batched Viterbi and marginals ignore the garbage past each sentence's end, and give
    bit-identical scores (the service promises a sentence the same answer in any batch)."""
    rng = np.random.default_rng(seed)
    crf = ner_crf(seed)
    batch = rng.normal(0, 4, (len(lengths), max(lengths), N)) * 3  # pads hold garbage too
    paths, marg = crf.decode_batch(batch, np.array(lengths))
    for i, w in enumerate(lengths):
        assert paths[i, :w].tolist() == crf.viterbi(batch[i, :w])
        np.testing.assert_array_equal(marg[i, :w], crf.marginals(batch[i, :w]))


@pytest.mark.parametrize("name", sorted(crf_graphs.GRAPHS))
def test_the_shipped_loop_graphs_are_what_the_generator_makes(name: str) -> None:
    shipped = onnx.load(str(crf_graphs.OUT / name))
    assert shipped == crf_graphs.GRAPHS[name](), "run `python -m training.crf_graphs`"


def test_a_label_set_of_another_size_decodes_too() -> None:
    labels = ["O", *(f"{p}-T{k}" for k in range(6) for p in "BI")]  # 13 labels
    rng = np.random.default_rng(5)
    n = len(labels)
    crf = CRFDecoder.build(labels, rng.normal(0, 1, (n, n)), np.zeros(n), np.zeros(n))
    emissions = rng.normal(0, 3, (3, n))
    paths = {
        p: sum(emissions[t, k] for t, k in enumerate(p))
        + sum(crf.transitions[a, b] for a, b in itertools.pairwise(p))
        + crf.start[p[0]] + crf.end[p[-1]]
        for p in itertools.product(range(n), repeat=3)
    }  # fmt: skip
    assert tuple(crf.viterbi(emissions)) == max(paths, key=paths.__getitem__)
    np.testing.assert_allclose(crf.marginals(emissions).sum(1), 1.0)
