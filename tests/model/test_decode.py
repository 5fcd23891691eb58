"""The tag decoder: each head's labels and scores of a padded batch, sentence by sentence as
alone, in the model's head order, with the refiner's and the rules' answers."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pytest

from app.model.decode import HeadDecoder, HeadTags, TagDecoder
from app.model.featurize import Features
from tests.helpers import NER_LABELS, ner_crf

N = len(NER_LABELS)


def _sentence(starts: list[int], length: int) -> Features:
    ids = np.arange(length, dtype=np.int64)
    return Features(ids, ids, np.array(starts), words=tuple(f"w{k}" for k in starts))


def test_tag_decoder_batch_equals_one_by_one() -> None:
    rng = np.random.default_rng(0)
    upos = [f"U{k}" for k in range(5)]
    crf = ner_crf(1)
    heads = [
        HeadDecoder("upos", upos),
        HeadDecoder("ner", crf.labels, crf),
        HeadDecoder("xpos", upos, last_piece=True),
    ]
    decoder = TagDecoder(heads)
    sentences = [_sentence([0, 2, 3], 5), _sentence([0], 1), _sentence([0, 1, 2, 4, 6, 7], 9)]
    T = 9
    logits = {
        "upos_logits": rng.normal(0, 3, (3, T, 5)),
        "ner_logits": rng.normal(0, 3, (3, T, N)),
        "xpos_logits": rng.normal(0, 3, (3, T, 5)),
    }
    together = decoder.decode_batch(logits, sentences)
    for i, f in enumerate(sentences):
        alone = decoder.decode({k: v[i, : f.length] for k, v in logits.items()}, f)
        assert list(alone) == ["upos", "ner", "xpos"]  # the heads in the model's order
        assert together[i] == alone
        assert len(alone["upos"].labels) == len(alone["upos"].scores) == len(f.word_starts)


def test_a_last_piece_head_sums_each_words_first_and_last_pieces() -> None:
    labels = ["A", "B"]
    # word 0 is pieces 0-2: its first piece says A, its last piece says B louder
    logits = np.array([[2.0, 0.0], [0.0, 9.0], [0.0, 3.0], [1.0, 0.0]])
    f = _sentence([0, 3], 4)
    first = TagDecoder([HeadDecoder("h", labels)]).decode({"h_logits": logits}, f)
    both = TagDecoder([HeadDecoder("h", labels, last_piece=True)]).decode({"h_logits": logits}, f)
    assert first["h"].labels == ["A", "A"]
    assert both["h"].labels == ["B", "A"]  # [2, 3] at word 0; word 1 is one piece, counted twice
    assert both["h"].scores[0] == round(1 / (1 + np.exp(-1)), 4)  # answered to 4 decimals


class Echo:
    """A refiner that answers each word with the word itself and its UPOS id, so where each
    word went shows."""

    heads = ("xpos",)

    def refine(
        self, words: Sequence[str], upos: np.ndarray, probs: dict[str, np.ndarray]
    ) -> dict[str, HeadTags]:
        assert len(words) == len(upos) == len(probs["xpos"])
        labels = [f"{w}/{u}" for w, u in zip(words, upos.tolist(), strict=True)]
        return {"xpos": HeadTags(labels, [1.0] * len(words))}


def test_a_refiner_gets_every_word_of_the_batch_in_order_and_each_sentence_its_own() -> None:
    rng = np.random.default_rng(0)
    heads = [HeadDecoder("upos", ["U0", "U1"]), HeadDecoder("xpos", ["X0", "X1"])]
    decoder = TagDecoder(heads, Echo())
    sentences = [_sentence([0, 2], 3), _sentence([0], 1), _sentence([0, 1, 2], 3)]
    logits = {
        "upos_logits": rng.normal(0, 3, (3, 3, 2)),
        "xpos_logits": rng.normal(0, 3, (3, 3, 2)),
    }
    together = decoder.decode_batch(logits, sentences)
    for i, f in enumerate(sentences):
        alone = decoder.decode({k: v[i, : f.length] for k, v in logits.items()}, f)
        assert together[i] == alone and list(alone) == ["upos", "xpos"]
        upos = [int(label[1]) for label in alone["upos"].labels]
        assert alone["xpos"].labels == [f"{w}/{u}" for w, u in zip(f.words, upos, strict=True)]


class Counting(Echo):
    calls = 0

    def refine(
        self, words: Sequence[str], upos: np.ndarray, probs: dict[str, np.ndarray]
    ) -> dict[str, HeadTags]:
        Counting.calls += 1
        return super().refine(words, upos, probs)


@pytest.mark.parametrize(
    ("asked", "decoded", "refined"),
    [
        ([frozenset({"ner"}), frozenset({"ner"})], ["ner"], 0),
        ([frozenset({"ner"}), None], ["upos", "ner", "xpos"], 1),  # None: every head
        ([frozenset({"ner"}), frozenset({"xpos"})], ["upos", "ner", "xpos"], 1),  # UPOS refines
        ([frozenset({"upos"}), frozenset({"upos"})], ["upos"], 0),
    ],
)
def test_a_batch_decodes_the_heads_its_sentences_ask_for(
    asked: list[frozenset[str] | None], decoded: list[str], refined: int
) -> None:
    rng = np.random.default_rng(0)
    crf = ner_crf(1)
    heads = [HeadDecoder("upos", ["U0", "U1"]), HeadDecoder("ner", crf.labels, crf)]
    decoder = TagDecoder([*heads, HeadDecoder("xpos", ["X0", "X1"])], Counting())
    sentences = [dataclasses.replace(_sentence([0, 1], 2), heads=h) for h in asked]
    logits = {
        "upos_logits": rng.normal(0, 3, (2, 2, 2)),
        "ner_logits": rng.normal(0, 3, (2, 2, N)),
        "xpos_logits": rng.normal(0, 3, (2, 2, 2)),
    }
    Counting.calls = 0
    together = decoder.decode_batch(logits, sentences)
    assert [list(tags) for tags in together] == [decoded, decoded]
    assert Counting.calls == refined
    every = TagDecoder([*heads, HeadDecoder("xpos", ["X0", "X1"])], Counting())
    alone = every.decode({k: v[0] for k, v in logits.items()}, _sentence([0, 1], 2))
    assert all(together[0][name] == alone[name] for name in decoded)  # the same answers


def test_pictographs_are_sym_nfp_no_features_their_own_lemma_by_rule() -> None:
    heads = [
        HeadDecoder("upos", ["NOUN", "SYM", "NUM"]),
        HeadDecoder("xpos", ["NN", "NFP", "CD"]),
        HeadDecoder("feats", ["_", "Number=Sing"]),
        HeadDecoder("ner", ["O", "B-PER"]),
    ]
    f = Features(np.arange(3), np.arange(3), np.array([0, 1, 2]), words=("Party", "🎉", "👍🏽"))
    logits = {  # the model says NUM, CD, Number=Sing for all three
        "upos_logits": np.tile([0.0, 0.0, 5.0], (3, 1)),
        "xpos_logits": np.tile([0.0, 0.0, 5.0], (3, 1)),
        "feats_logits": np.tile([0.0, 5.0], (3, 1)),
        "ner_logits": np.tile([5.0, 0.0], (3, 1)),
    }
    tags = TagDecoder(heads).decode(logits, f)
    assert tags["upos"].labels == ["NUM", "SYM", "SYM"] and tags["upos"].scores[1:] == [1.0, 1.0]
    assert tags["xpos"].labels == ["CD", "NFP", "NFP"]
    assert tags["feats"].labels == ["Number=Sing", "_", "_"]
    assert tags["ner"].labels == ["O", "O", "O"]  # not the rule's: the model's
    only_ner = dataclasses.replace(f, heads=frozenset({"ner"}))
    assert list(TagDecoder(heads).decode(logits, only_ner)) == ["ner"]
