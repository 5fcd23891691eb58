"""spaCy's JSON (app/http/spacy_json.py) from hand-made parts, read back by spaCy: whitespace
that is more than one space becomes spaCy's SPACE token, pre-tokenized words are joined by
spaces. Through the app and the real model: tests/http/test_formats.py."""

from __future__ import annotations

import orjson
import spacy
from spacy.tokens import Doc

from app.core.answers import Entity, Sentence, TaggedText
from app.core.runs import TaggedPart
from app.http.spacy_json import SpacyWriter

TEXT = "  Alice met\n\nBob. "


def token(text: str, start: int | None, upos: str) -> dict[str, object]:
    end = None if start is None else start + len(text)
    return {"text": text, "start": start, "end": end, "upos": upos, "feats": "_", "lemma": text}


def written(texts: list[str] | None, parts: list[TaggedPart]) -> list[dict]:
    writer = SpacyWriter(texts)
    out = b"".join(chunk for part in parts for chunk in writer.part(part)) + writer.end()
    return orjson.loads(out)


def test_raw_text_in_two_parts_reads_back_with_its_whitespace() -> None:
    first = TaggedText(
        [token("Alice", 2, "PROPN"), token("met", 8, "VERB")],
        [Entity("Alice", "PER", 2, 7, 0, 1, 0.9)],
        [Sentence(2, 11, 0, 2)],
    )
    second = TaggedText(
        [token("Bob", 13, "PROPN"), token(".", 16, "PUNCT")],
        [Entity("Bob", "PER", 13, 16, 2, 3, 0.8)],
        [Sentence(13, 17, 2, 4)],
    )
    parts = [TaggedPart(0, first, 0, 13, False), TaggedPart(0, second, 2, None, True)]
    [doc_json] = written([TEXT], parts)
    doc = Doc(spacy.blank("en").vocab).from_json(doc_json)
    assert doc.text == TEXT
    assert [(t.text, t.pos_) for t in doc] == [
        ("  ", "SPACE"),
        ("Alice", "PROPN"),
        ("met", "VERB"),
        ("\n\n", "SPACE"),
        ("Bob", "PROPN"),
        (".", "PUNCT"),
    ]
    assert [(e.text, e.label_) for e in doc.ents] == [("Alice", "PER"), ("Bob", "PER")]
    # the leading whitespace is a sentence of its own to spaCy
    assert [s.text.strip() for s in doc.sents] == ["", "Alice met", "Bob."]
    assert [t["id"] for t in doc_json["tokens"]] == list(range(6))


def test_pre_tokenized_words_are_joined_by_spaces() -> None:
    words = TaggedText(
        [token("New", None, "PROPN"), token("York", None, "PROPN")],
        [Entity("New York", "LOC", None, None, 0, 2, 0.9)],
        [Sentence(None, None, 0, 2)],
    )
    [doc_json] = written(None, [TaggedPart(0, words, 0, None, True)])
    doc = Doc(spacy.blank("en").vocab).from_json(doc_json)
    assert doc.text == "New York"
    assert [(e.text, e.label_) for e in doc.ents] == [("New York", "LOC")]
    assert [s.text for s in doc.sents] == ["New York"]
