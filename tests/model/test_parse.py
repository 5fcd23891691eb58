"""The parse decoder on random weights: a well-formed tree per sentence, the same alone as in a
batch, and the root pointing at itself."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from app.model.decode import HeadDecoder, TagDecoder
from app.model.featurize import Features
from app.model.parse import TreeDecoder

ARC, REL, RELATIONS = 6, 4, ["root", "nsubj", "obj"]


def decoder(seed: int = 0) -> TreeDecoder:
    rng = np.random.default_rng(seed)
    return TreeDecoder(
        {
            "arc": ARC,
            "rel": REL,
            "root": rng.normal(size=ARC),
            "root_bias": 0.5,
            "rel_root": rng.normal(size=REL),
            "rel_weight": rng.normal(size=(REL, len(RELATIONS))),
            "rel_bias": np.zeros(len(RELATIONS)),
        }
    )


def test_a_parse_is_a_tree_with_its_root_pointing_at_itself() -> None:
    words = np.random.default_rng(1).normal(size=(7, decoder().width)).astype(np.float32)
    found = decoder().parse(words)
    roots = [i for i, h in enumerate(found.heads.tolist()) if h == i]
    assert len(roots) == 1
    assert ((found.scores > 0) & (found.scores <= 1)).all()
    assert set(found.relations.tolist()) <= {0, 1, 2}


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 12), min_size=1, max_size=5), st.integers(0, 1000))
def test_each_sentence_is_parsed_the_same_alone_as_in_a_padded_batch(
    sizes: list[int], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    tags = TagDecoder([HeadDecoder("deprel", RELATIONS, tree=decoder(), output="parse")])
    sentences = []
    for n in sizes:  # words of one or two pieces
        pieces = rng.integers(1, 3, n)
        starts = np.concatenate([[0], np.cumsum(pieces)[:-1]]).astype(np.int64)
        T = int(pieces.sum())
        sentences.append(Features(np.ones(T, np.int64), np.ones(T, np.int64), starts))
    T = max(f.length for f in sentences)
    features = rng.normal(size=(len(sizes), T, decoder().width)).astype(np.float32)
    together = tags.decode_batch({"parse": features}, sentences)
    for i, f in enumerate(sentences):
        [alone] = tags.decode_batch({"parse": features[i : i + 1, : f.length]}, [f])
        assert alone == together[i]
        heads = together[i]["deprel"].heads
        assert heads is not None and all(0 <= h < len(f.word_starts) for h in heads)
