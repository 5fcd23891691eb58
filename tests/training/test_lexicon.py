"""`bigru lexicon`'s tables from a small treebank: what each form took, the same file for the
same data, and a model folder that serves it."""

from __future__ import annotations

import json
from pathlib import Path

from app.model.spec import ModelSpec
from training import lexicon
from training.data import Sentence

TRAIN = [
    Sentence(
        "s1",
        "Cats saw saws .",
        ["Cats", "saw", "saws", "."],
        upos=["NOUN", "VERB", "NOUN", "PUNCT"],
        xpos=["NNS", "VBD", "NNS", "."],
        feats=["Number=Plur", "Tense=Past", "Number=Plur", "_"],
        lemmas=["cat", "see", "saw", "."],
    ),
    Sentence(
        "s2",
        "The saw cuts",
        ["The", "saw", "cuts"],
        upos=["DET", "NOUN", "VERB"],
        xpos=["DT", "NN", "VBZ"],
        feats=["Definite=Def", "Number=Sing", "Number=Sing"],
        lemmas=["the", "saw", "cut"],
    ),
    Sentence(
        "s3",
        "I saw Paris",
        ["I", "saw", "Paris"],
        upos=["PRON", "VERB", "PROPN"],
        xpos=["PRP", "VBD", "NNP"],
        feats=["Case=Nom", "Tense=Past", "Number=Sing"],
        lemmas=["I", "see", "Paris"],
    ),
]


def test_the_tables_say_what_each_form_took() -> None:
    built = lexicon.build(TRAIN, weight=0.5, floor=0.01)
    assert built["xpos_by_upos"]["NOUN"] == ["NN", "NNS"]
    assert built["feats_by_xpos"]["NNS"] == ["Number=Plur"]
    assert built["xpos"]["saw\tVERB"] == {"VBD": 1.0}
    assert built["xpos"]["cats\tNOUN"] == {"NNS": 1.0}  # by the lower-cased form
    assert built["lemma"]["xpos"]["saw\tVBD"] == ["see", 1.0]
    assert built["lemma"]["upos"]["saw\tNOUN"] == ["saw", 1.0]
    assert built["lemma"]["lower"]["cats\tNOUN"] == ["cat", 1.0]
    assert "paris\tPROPN" not in built["lemma"]["lower"]  # a proper noun keeps its case


def test_the_same_data_writes_the_same_file_which_a_model_folder_serves(model_copy: Path) -> None:
    folder = model_copy
    (folder / "card.json").unlink()  # its sha256 of the shipped lexicon would not match
    first = lexicon.write(lexicon.build(TRAIN), folder)
    again = lexicon.write(lexicon.build(TRAIN), folder)
    assert first == again and first["entries"] > 0
    spec = ModelSpec.load(folder)
    assert spec.lexicon is not None
    assert spec.lexicon.lower["cats\tNOUN"] == ("cat", 1.0)
    assert json.loads(json.dumps(first)) == first  # card.json can hold the facts as they are
