"""The lexicon joined with the morphology heads: tags barred by UPOS, shares that tip close
calls, lemmas of seen forms, the heads' own answers for unseen ones; and on the shipped model."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from app.model.lemma import apply_script
from app.model.lexicon import LEXICON_FILE, Lexicon
from app.model.spec import ModelSpec

LABELS = {
    "upos": ["NOUN", "VERB", "PROPN"],
    "xpos": ["NN", "NNS", "VB", "VBD", "NNP"],
    "feats": ["Number=Sing", "Number=Plur", "VerbForm=Inf", "Tense=Past", "_"],
    "lemma": ["k|0|", "l|0|", "k|1|", "k|2|", "k|3|"],
}
RAW = {
    "weight": 0.5,
    "floor": 0.001,
    "xpos_by_upos": {"NOUN": ["NN", "NNS"], "VERB": ["VB", "VBD"], "PROPN": ["NNP"]},
    "feats_by_xpos": {"NN": ["Number=Sing"], "NNS": ["Number=Plur"], "VBD": ["Tense=Past"]},
    "xpos": {"cats\tNOUN": {"NNS": 1.0}, "saw\tVERB": {"VBD": 0.9, "VB": 0.1}},
    "feats": {},
    "lemma": {
        "xpos": {"cats\tNNS": ["cat", 1.0], "saw\tVBD": ["see", 0.9]},
        "upos": {"saw\tNOUN": ["saw", 1.0]},
        "lower": {"visit\tVERB": ["visit", 1.0]},
        "known": ["cat", "saw", "see", "smell", "visit"],
    },
}


@pytest.fixture
def lexicon(tmp_path: Path) -> Lexicon:
    path = tmp_path / LEXICON_FILE
    path.write_bytes(gzip.compress(json.dumps(RAW).encode()))
    return Lexicon.load(path, LABELS)


def probs(rows: list[list[float]]) -> np.ndarray:
    return np.array(rows, dtype=np.float64)


def refine(lexicon: Lexicon, words: list[str], upos: list[str], xpos: list[list[float]]):
    n = len(words)
    uniform = {h: probs([[1 / len(LABELS[h])] * len(LABELS[h])] * n) for h in ("feats", "lemma")}
    ids = np.array([LABELS["upos"].index(u) for u in upos])
    return lexicon.refine(words, ids, {"xpos": probs(xpos), **uniform})


def test_a_tag_never_seen_with_the_words_upos_is_barred(lexicon: Lexicon) -> None:
    # the head prefers VB for a NOUN: the best tag a NOUN takes wins instead
    tags = refine(lexicon, ["dog"], ["NOUN"], [[0.2, 0.1, 0.6, 0.05, 0.05]])
    assert tags["xpos"].labels == ["NN"]
    assert tags["xpos"].scores[0] == pytest.approx(0.2 / 0.3)  # its share of what is allowed
    assert tags["feats"].labels == ["Number=Sing"]  # and the feats NN takes


def test_a_forms_shares_tip_a_close_call_but_not_a_clear_one(lexicon: Lexicon) -> None:
    close = refine(lexicon, ["cats"], ["NOUN"], [[0.55, 0.45, 0, 0, 0]])
    assert close["xpos"].labels == ["NNS"]
    assert close["feats"].labels == ["Number=Plur"]
    # "saw" as a VERB was VBD 9 times in 10: a head sure of VB keeps it
    clear = refine(lexicon, ["saw"], ["VERB"], [[0, 0, 0.999, 0.001, 0]])
    assert clear["xpos"].labels == ["VB"]


def test_lemmas_of_seen_forms_come_from_training_and_unseen_ones_from_the_head(
    lexicon: Lexicon,
) -> None:
    words = ["cats", "saw", "saw", "Visit", "Zorbs"]
    upos = ["NOUN", "VERB", "NOUN", "VERB", "PROPN"]
    xpos = [[0, 1, 0, 0, 0], [0, 0, 0, 1, 0], [1, 0, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 1]]
    n = len(words)
    lemma = probs([[0.1, 0.1, 0.6, 0.1, 0.1]] * n)  # the head: cut the last character
    feats = probs([[0.2] * 5] * n)
    ids = np.array([LABELS["upos"].index(u) for u in upos])
    tags = lexicon.refine(words, ids, {"xpos": probs(xpos), "feats": feats, "lemma": lemma})
    made = [apply_script(w, s) for w, s in zip(words, tags["lemma"].labels, strict=True)]
    # by form and XPOS, by form and UPOS, by the lower-cased form, then the head's script
    assert made == ["cat", "see", "saw", "visit", "Zorb"]
    assert tags["lemma"].scores == pytest.approx([1.0, 0.9, 1.0, 1.0, 0.6])


@pytest.mark.parametrize(
    ("head", "lemma"),
    [
        ([0, 0, 0.5, 0.3, 0.2], "smell"),  # cut 1 makes "smelle", unknown; cut 2 is known
        ([0, 0, 0.5, 0.04, 0.46], "smelle"),  # "smell" is under a tenth of the best: not tried
        ([0, 0, 0.5, 0, 0.4], "smelle"),  # cut 3, "smel", is no lemma either: the best stays
    ],
)
def test_an_unseen_forms_script_is_checked_against_the_lemmas_of_training(
    lexicon: Lexicon, head: list[float], lemma: str
) -> None:
    ids = np.array([LABELS["upos"].index("VERB")])
    tags = lexicon.refine(
        ["smelled"],
        ids,
        {"xpos": probs([[0, 0, 0, 1, 0]]), "feats": probs([[0.2] * 5]), "lemma": probs([head])},
    )
    assert apply_script("smelled", tags["lemma"].labels[0]) == lemma


def test_the_shipped_model_has_its_lexicon(model_dir: Path) -> None:
    spec = ModelSpec.load(model_dir)
    assert spec.lexicon is not None
    card = json.loads((model_dir / "card.json").read_text())
    assert card["lexicon"]["entries"] > 10_000
