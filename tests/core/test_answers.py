"""app.core.answers: a text's answer assembled from its sentences' decoded tags, made by hand
here: tokens with offsets into the whole text and each head asked for, entities from the span
head within each sentence, sentences; pre-tokenized input has no offsets."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from app.core.answers import Assembler, Entity, Sentence
from app.model.decode import HeadTags, WordTags
from app.model.spec import HeadSpec
from app.model.text import Token, tokenize
from tests.helpers import fake_spec

NER = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
_CRF = {"transitions": np.zeros((5, 5)), "start": np.zeros(5), "end": np.zeros(5)}
SPEC = dataclasses.replace(
    fake_spec(),
    heads=[
        HeadSpec("upos", ["NOUN", "PROPN", "VERB"], "softmax", None),
        HeadSpec("ner", NER, "crf", _CRF),
    ],
)


def tags(upos: list[str], ner: list[str], ner_scores: list[float] | None = None) -> WordTags:
    """One sentence's decoded heads; each UPOS label scored 0.5."""
    scores = ner_scores or [0.9] * len(ner)
    return {"upos": HeadTags(upos, [0.5] * len(upos)), "ner": HeadTags(ner, scores)}


@pytest.fixture
def assembler() -> Assembler:
    return Assembler(SPEC)


def test_tokens_carry_offsets_into_the_text_and_every_head(assembler: Assembler) -> None:
    text = "Ann met Bob.  Paris is big."
    tokens = tokenize(text)
    words = [
        tags(["PROPN", "VERB", "PROPN", "NOUN"], ["B-PER", "O", "B-PER", "O"]),
        tags(["PROPN", "VERB", "NOUN", "NOUN"], ["B-LOC", "O", "O", "O"]),
    ]
    tagged = assembler.text(tokens, text, [(0, 4), (4, 8)], words, None)
    first = tagged.tokens[0]
    assert first == {
        "text": "Ann",
        "start": 0,
        "end": 3,
        "upos": "PROPN",
        "upos_score": 0.5,
        "ner": "B-PER",
        "ner_score": 0.9,
    }
    assert list(first) == ["text", "start", "end", "upos", "upos_score", "ner", "ner_score"]
    assert [(t["text"], t["start"], t["end"]) for t in tagged.tokens] == [
        (t.text, t.start, t.end) for t in tokens
    ]
    assert [t["upos"] for t in tagged.tokens[4:]] == ["PROPN", "VERB", "NOUN", "NOUN"]
    assert tagged.sentences == [Sentence(0, 12, 0, 4), Sentence(14, 27, 4, 8)]
    assert [
        (e.text, e.label, e.start, e.end, e.token_start, e.token_end) for e in tagged.entities
    ] == [
        ("Ann", "PER", 0, 3, 0, 1),
        ("Bob", "PER", 8, 11, 2, 3),
        ("Paris", "LOC", 14, 19, 4, 5),  # token indices into the whole text's tokens
    ]


def test_an_entity_is_the_texts_slice_scored_by_the_mean_of_its_tokens(
    assembler: Assembler,
) -> None:
    text = "in New  York"
    words = tags(["NOUN", "PROPN", "PROPN"], ["O", "B-LOC", "I-LOC"], [0.99, 0.9, 0.7])
    [entity] = assembler.text(tokenize(text), text, [(0, 3)], [words], None).entities
    assert entity == Entity("New  York", "LOC", 3, 12, 1, 3, pytest.approx(0.8))


def test_no_entity_crosses_a_sentence_boundary(assembler: Assembler) -> None:
    text = "I saw Ann Lee"
    words = [tags(["NOUN"] * 3, ["O", "O", "B-PER"]), tags(["PROPN"], ["I-PER"])]
    tagged = assembler.text(tokenize(text), text, [(0, 3), (3, 4)], words, None)
    # a stray I- opens an entity of its own, as conlleval reads it
    assert [(e.text, e.token_start, e.token_end) for e in tagged.entities] == [
        ("Ann", 2, 3),
        ("Lee", 3, 4),
    ]


def test_pre_tokenized_words_have_no_offsets(assembler: Assembler) -> None:
    tokens = [Token("New", 0, 3), Token("York", 4, 8), Token("rocks", 9, 14)]
    words = tags(["PROPN", "PROPN", "VERB"], ["B-LOC", "I-LOC", "O"])
    tagged = assembler.text(tokens, None, [(0, 3)], [words], None)
    assert [(t["text"], t["start"], t["end"]) for t in tagged.tokens] == [
        ("New", None, None),
        ("York", None, None),
        ("rocks", None, None),
    ]
    [entity] = tagged.entities
    assert (entity.text, entity.start, entity.end, entity.token_start, entity.token_end) == (
        "New York",  # its words joined by a space
        None,
        None,
        0,
        2,
    )
    assert tagged.sentences == [Sentence(None, None, 0, 3)]


def test_only_the_heads_asked_for(assembler: Assembler) -> None:
    text = "Ann sang"
    words = [tags(["PROPN", "VERB"], ["B-PER", "O"])]
    upos = assembler.text(tokenize(text), text, [(0, 2)], words, ["upos"])
    assert list(upos.tokens[0]) == ["text", "start", "end", "upos", "upos_score"]
    assert upos.entities == []  # the span head was not asked for
    ner = assembler.text(tokenize(text), text, [(0, 2)], [{"ner": words[0]["ner"]}], ["ner"])
    assert list(ner.tokens[1]) == ["text", "start", "end", "ner", "ner_score"]
    assert [e.text for e in ner.entities] == ["Ann"]


def test_a_model_without_a_span_head_finds_no_entities() -> None:
    assembler = Assembler(fake_spec(heads=("upos", "ner")))  # softmax heads only
    text = "Ann sang"
    tagged = assembler.text(
        tokenize(text), text, [(0, 2)], [tags(["A", "B"], ["B-PER", "O"])], None
    )
    assert tagged.entities == [] and tagged.tokens[0]["ner"] == "B-PER"


def test_no_words_no_answer(assembler: Assembler) -> None:
    tagged = assembler.text([], "   ", [], [], None)
    assert (tagged.tokens, tagged.entities, tagged.sentences) == ([], [], [])
