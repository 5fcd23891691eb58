"""/tag's other formats, read back by the real readers: the `conllu` package and spaCy."""

from __future__ import annotations

import conllu
import pytest
import spacy
from fastapi.testclient import TestClient
from spacy import displacy
from spacy.tokens import Doc

from app.core import runs
from tests.helpers import error_of

DOC = "Alice moved to Paris last year. She likes it there!\nBob stayed in New York."


def _tag(client: TestClient, **body) -> list[dict]:
    r = client.post("/tag", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def test_conllu_reads_back_with_every_column_and_sentence(client: TestClient) -> None:
    [json_answer] = _tag(client, inputs=DOC)
    r = client.post("/tag", json={"inputs": [DOC, "Hi."], "format": "conllu"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    sentences = conllu.parse(r.text)
    assert len(sentences) == len(json_answer["sentences"]) + 1
    first = sentences[: len(json_answer["sentences"])]
    tokens = [t for s in first for t in s]
    assert [t["form"] for t in tokens] == [t["text"] for t in json_answer["tokens"]]
    for got, want in zip(tokens, json_answer["tokens"], strict=True):
        assert got["upos"] == want["upos"]
        for head in ("xpos", "lemma"):
            if head in want:
                assert got[head] == want[head]
        ner = want["ner"]
        assert (got["misc"] or {}).get("NER") == (None if ner == "O" else ner)
        if "deprel" not in want:  # a model without a parser
            assert got["head"] is None and got["deprel"] == "_"
    for s, want in zip(first, json_answer["sentences"], strict=True):
        assert s.metadata["text"] == " ".join(DOC[want["start"] : want["end"]].split())
        assert s[0]["id"] == 1
        if "deprel" in json_answer["tokens"][0]:  # HEAD within the sentence, 0 its root
            for got in s:
                want_token = json_answer["tokens"][want["token_start"] + got["id"] - 1]
                own = want["token_start"] + got["id"] - 1
                head = (
                    0 if want_token["head"] == own else want_token["head"] - want["token_start"] + 1
                )
                assert (got["head"], got["deprel"]) == (head, want_token["deprel"])
    # `Paris` is followed by a space, `year` by the period
    year = next(t for t in tokens if t["form"] == "year")
    paris = next(t for t in tokens if t["form"] == "Paris")
    assert year["misc"] == {"SpaceAfter": "No"} and "SpaceAfter" not in (paris["misc"] or {})
    assert sentences[0].metadata["newdoc id"] == "0"


def test_spacy_builds_the_doc_with_words_tags_entities_and_sentences(client: TestClient) -> None:
    [json_answer] = _tag(client, inputs=DOC)
    [doc_json] = _tag(client, inputs=DOC, format="spacy")
    doc = Doc(spacy.blank("en").vocab).from_json(doc_json)
    assert doc.text == DOC
    words = [t for t in doc if not t.is_space]  # the line break is a whitespace token
    assert [t.text for t in words] == [t["text"] for t in json_answer["tokens"]]
    assert [t.pos_ for t in words] == [t["upos"] for t in json_answer["tokens"]]
    if "xpos" in json_answer["tokens"][0]:
        assert [t.tag_ for t in words] == [t["xpos"] for t in json_answer["tokens"]]
        assert [t.lemma_ for t in words] == [t["lemma"] for t in json_answer["tokens"]]
        feats = [t["feats"] for t in json_answer["tokens"]]
        assert [str(t.morph) or "_" for t in words] == feats
    assert [(e.text, e.label_) for e in doc.ents] == [
        (e["text"], e["label"]) for e in json_answer["entities"]
    ]
    assert [s.text.strip() for s in doc.sents] == [
        DOC[s["start"] : s["end"]] for s in json_answer["sentences"]
    ]


def test_spacy_gets_the_parse_for_its_heads_noun_chunks_and_displacy(client: TestClient) -> None:
    [json_answer] = _tag(client, inputs=DOC)
    tokens = json_answer["tokens"]
    if "head" not in tokens[0]:
        pytest.skip("the model has no parser")
    [doc_json] = _tag(client, inputs=DOC, format="spacy")
    doc = Doc(spacy.blank("en").vocab).from_json(doc_json)
    assert doc.has_annotation("DEP")
    words = [t for t in doc if not t.is_space]
    assert [words.index(t.head) for t in words] == [t["head"] for t in tokens]
    relations = {"root": "ROOT", "obj": "dobj", "nsubj:pass": "nsubjpass", "iobj": "dative"}
    assert [t.dep_ for t in words] == [relations.get(t["deprel"], t["deprel"]) for t in tokens]
    chunks = list(doc.noun_chunks)
    assert chunks and all(c.root.pos_ in ("NOUN", "PROPN", "PRON") for c in chunks)
    svg = displacy.render(doc, style="dep", jupyter=False, options={"collapse_punct": False})
    arcs = [t for t in words if t.head.i != t.i]
    assert svg.count('class="displacy-arc"') >= len(arcs)
    assert all(f">{t.dep_}</textPath>" in svg for t in arcs)


def test_pre_tokenized_input_reads_back_too(client: TestClient) -> None:
    tokens = [["Alice", "moved", "."], ["Bob", "stayed"]]
    text = client.post("/tag", json={"tokens": tokens, "format": "conllu"}).text
    assert [[t["form"] for t in s] for s in conllu.parse(text)] == tokens
    docs = _tag(client, tokens=tokens, format="spacy")
    assert [[t.text for t in Doc(spacy.blank("en").vocab).from_json(d)] for d in docs] == tokens


def test_heads_answers_only_the_heads_asked_for(client: TestClient) -> None:
    [full] = _tag(client, inputs=DOC)
    [only_ner] = _tag(client, inputs=DOC, heads=["ner"])
    assert {k for t in only_ner["tokens"] for k in t} == {
        "text",
        "start",
        "end",
        "ner",
        "ner_score",
    }
    assert only_ner["entities"] == full["entities"] and only_ner["sentences"] == full["sentences"]
    [no_entities] = _tag(client, inputs=DOC, heads=["upos"])
    assert no_entities["entities"] == [] and "ner" not in no_entities["tokens"][0]


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"heads": ["upos", "dep"]}, "unknown heads ['dep']; this model's heads are ['upos'"),
        ({"format": "xml"}, "'json', 'conllu' or 'spacy'"),
    ],
)
def test_unknown_heads_and_formats_are_422s_that_name_the_choices(
    client: TestClient, body: dict, said: str
) -> None:
    r = client.post("/tag", json={"inputs": DOC, **body})
    assert r.status_code == 422
    assert said in error_of(r)[0]


@pytest.mark.parametrize("fmt", ["json", "conllu", "spacy"])
def test_an_answer_written_in_many_parts_is_the_same_bytes(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """Each input answered in one part, then in parts of a few words (app.core.runs): the
    writers give the same bytes, entities and sentences after every part's tokens."""
    inputs = [DOC * 3, "", "  Hi.  \n\n", "Alice met Bob in New York. " * 4]
    whole = client.post("/tag", json={"inputs": inputs, "format": fmt})
    monkeypatch.setattr(runs, "RUN_WORDS", 3)
    parts = client.post("/tag", json={"inputs": inputs, "format": fmt})
    assert whole.status_code == parts.status_code == 200
    assert parts.content == whole.content
    tokens = [[DOC.split()[:5]], [["Alice", "met", "Bob"], ["in", "New", "York", "."]]]
    for given in tokens:
        assert client.post("/tag", json={"tokens": given, "format": fmt}).status_code == 200
