"""/tag's answer as the JSON of spaCy's `Doc.to_json`, which `spacy.tokens.Doc.from_json` turns
back into a Doc: per input `text`, `tokens` (character offsets, `pos`, `tag`, `morph`,
`lemma`, and with a parser `head`, a token id, and `dep`), `ents` and `sents` (character
offsets); pre-tokenized input is joined by spaces.

Relations keep their UD names, except where spaCy's English pipelines name the same relation
otherwise and spaCy's own code reads the name (`doc.noun_chunks`, displaCy): the root is `ROOT`,
a direct object `dobj`, a passive subject `nsubjpass`, an indirect object `dative`. A whitespace
token (`SPACE`) hangs on the word before it (the first word, at the start) as `dep`, as spaCy's
parser attaches whitespace."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from app.core.runs import TaggedPart
from app.http.writer import JsonList, Labels, Rows, TopList, Writer


class SpacyWriter(Writer):
    """Per input, JSON that `Doc.from_json` reads; a pre-tokenized input (one part: it is one
    sentence) is its words joined by single spaces. Entities and sentences are held as numbers
    until the input's tokens are written."""

    def __init__(self, texts: list[str] | None) -> None:
        super().__init__(texts)
        self.inputs = TopList()

    def begin(self, part: TaggedPart) -> bytes:
        self.tokens = JsonList()
        self.ents, self.sents, self.labels = Rows(3), Rows(2), Labels()
        self.end_offset = 0  # where the last token written ends
        self.next_id = 0
        self.last_word: int | None = None  # the id of the last word written, for whitespace
        if self.texts is not None:
            self.text = self.texts[part.index]
        else:
            self.text = " ".join(t["text"] for t in part.tagged.tokens)
        return self.inputs.next() + b'{"text":' + orjson.dumps(self.text) + b',"tokens":['

    def body(self, part: TaggedPart) -> bytes:
        spans = self._spans(part)
        first = part.first_token
        for e in part.tagged.entities:
            a, b = spans[e.token_start - first][0], spans[e.token_end - 1 - first][1]
            self.ents.add((a, b, self.labels.id(e.label)))
        for s in part.tagged.sentences:
            self.sents.add((spans[s.token_start - first][0], spans[s.token_end - 1 - first][1]))
        return self.tokens.more(orjson.dumps(self._tokens(part, spans)))

    def _tokens(self, part: TaggedPart, spans: list[tuple[int, int]]) -> list[dict[str, Any]]:
        """spaCy's tokens of the part: its words, and the whitespace between them that is more
        than one space."""
        tokens: list[dict[str, Any]] = []
        for t, (a, b) in zip(part.tagged.tokens, spans, strict=True):
            tokens += _spaces(self.text, self.end_offset, a)
            tokens.append(
                {
                    "start": a,
                    "end": b,
                    "pos": t.get("upos", ""),
                    "tag": t.get("xpos", ""),
                    "morph": "" if t.get("feats") in (None, "_") else t["feats"],
                    "lemma": t.get("lemma", ""),
                }
            )
            self.end_offset = b
        if part.last:
            tokens += _spaces(self.text, self.end_offset, len(self.text))
        for token in tokens:
            token["id"] = self.next_id
            self.next_id += 1
        if part.tagged.tokens and "head" in part.tagged.tokens[0]:
            self.last_word = _attach(tokens, part, self.last_word)
        return tokens

    def _spans(self, part: TaggedPart) -> list[tuple[int, int]]:
        """Each token's characters; pre-tokenized words are a single space apart."""
        if self.texts is not None:
            return [(t["start"], t["end"]) for t in part.tagged.tokens]
        spans, pos = [], 0
        for t in part.tagged.tokens:
            spans.append((pos, pos + len(t["text"])))
            pos += len(t["text"]) + 1
        return spans

    def finish(self) -> Iterator[bytes]:
        labels = self.labels.names
        yield b'],"ents":['
        written = JsonList()
        for rows in self.ents.chunks():
            ents = [{"start": a, "end": b, "label": labels[k]} for (a, b, k), _ in rows]
            yield written.more(orjson.dumps(ents))
        yield b'],"sents":['
        written = JsonList()
        for rows in self.sents.chunks():
            yield written.more(orjson.dumps([{"start": a, "end": b} for (a, b), _ in rows]))
        yield b"]}"

    def end(self) -> bytes:
        return self.inputs.end()


# UD relations under the names spaCy's English code reads
SPACY_RELATIONS = {"root": "ROOT", "obj": "dobj", "nsubj:pass": "nsubjpass", "iobj": "dative"}


def _attach(tokens: list[dict[str, Any]], part: TaggedPart, last: int | None) -> int | None:
    """Each token's `head` (a token id) and `dep`: a word's from the parse, whitespace on the
    word before it, `last` for the part's first tokens (at the very start, the word after it).
    The part's words are its tokens without `SPACE`s, in order; heads never leave their
    sentence, so never the part. The part's last word's id back."""
    words = [t for t in tokens if t["pos"] != "SPACE"]
    for word, tagged in zip(words, part.tagged.tokens, strict=True):
        word["head"] = words[tagged["head"] - part.first_token]["id"]
        word["dep"] = SPACY_RELATIONS.get(tagged["deprel"], tagged["deprel"])
    for token in tokens:
        if token["pos"] != "SPACE":
            last = token["id"]
            continue
        token["head"] = last if last is not None else words[0]["id"] if words else token["id"]
        token["dep"] = "dep"
    return last


def _spaces(text: str, end: int, start: int) -> list[dict[str, Any]]:
    """spaCy's whitespace token for the gap text[end:start], when it is more than the one space
    a token may carry after it (a line break, two spaces, leading whitespace)."""
    if end > 0 and text.startswith(" ", end):
        end += 1  # the previous token's trailing space
    if end >= start:
        return []
    gap = text[end:start]
    return [{"start": end, "end": start, "pos": "SPACE", "tag": "_SP", "morph": "", "lemma": gap}]
