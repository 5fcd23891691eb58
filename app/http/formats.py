"""/tag's answers written part by part (app.core.runs), so that a long document's answer is bytes
on the wire, never a document's worth of Python objects: JSON, CoNLL-U, and the JSON of spaCy's
`Doc.to_json`, which `spacy.tokens.Doc.from_json` turns back into a Doc. Each writer gives, over
all its parts, the same bytes as writing the whole answer at once.

JSON: a list with, per input, `tokens`, `entities` and `sentences` (app.core.answers). CoNLL-U:
one block per sentence, `# newdoc id = <input index>` before each input's first, `# sent_id =
<input>-<sentence>` and `# text` (the sentence's own text, line breaks as spaces); ID, FORM,
LEMMA, UPOS, XPOS, FEATS, HEAD (1-based within the sentence, 0 for its root) and DEPREL from the
parse, `_` for DEPS; MISC `NER=<IOB2 label>` on an entity's tokens (as CoNLL-U NER corpora write
entities; the others are O) and `SpaceAfter=No` where the next token starts where this one ends.
A head the model lacks is `_`. spaCy: per input `text`, `tokens` (character offsets, `pos`,
`tag`, `morph`, `lemma`), `ents` and `sents` (character offsets); pre-tokenized input is joined
by spaces.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from app.core.answers import Entity, Sentence, TaggedToken
from app.core.runs import TaggedPart
from app.http.spacy_json import SpacyWriter
from app.http.writer import JsonList, Labels, Rows, TopList, Writer


class JsonWriter(Writer):
    """The bytes orjson writes for the whole list of TaggedTexts. An input answered in one part
    is written at once; a longer one's tokens as they come, its entities and sentences held as
    numbers and written after them."""

    def __init__(self, texts: list[str] | None) -> None:
        super().__init__(texts)
        self.inputs = TopList()

    def part(self, part: TaggedPart) -> Iterator[bytes]:
        if part.first_token == 0 and part.last:  # the whole input
            yield self.inputs.next() + orjson.dumps(part.tagged)
            return
        yield from super().part(part)

    def begin(self, part: TaggedPart) -> bytes:
        self.tokens = JsonList()
        self.entities, self.sentences, self.labels = Rows(5), Rows(4), Labels()
        return self.inputs.next() + b'{"tokens":['

    def body(self, part: TaggedPart) -> bytes:
        for e in part.tagged.entities:
            a, b = _raw(e.start, e.end)
            self.entities.add((a, b, e.token_start, e.token_end, self.labels.id(e.label)), e.score)
        for s in part.tagged.sentences:
            self.sentences.add((*_raw(s.start, s.end), s.token_start, s.token_end))
        return self.tokens.more(orjson.dumps(part.tagged.tokens))

    def finish(self) -> Iterator[bytes]:
        assert self.texts is not None  # only raw texts are answered in several parts
        text, labels = self.texts[self.current], self.labels.names
        yield b'],"entities":['
        written = JsonList()
        for rows in self.entities.chunks():
            entities = [
                Entity(text[a:b], labels[label], a, b, first, end, score or 0.0)
                for (a, b, first, end, label), score in rows
            ]
            yield written.more(orjson.dumps(entities))
        yield b'],"sentences":['
        written = JsonList()
        for rows in self.sentences.chunks():
            yield written.more(orjson.dumps([Sentence(*ints) for ints, _ in rows]))
        yield b"]}"

    def end(self) -> bytes:
        return self.inputs.end()


def _raw(start: int | None, end: int | None) -> tuple[int, int]:
    """Offsets of raw text, which has them (only raw text is answered in several parts)."""
    assert start is not None and end is not None
    return start, end


def _field(token: TaggedToken, head: str) -> str:
    value = token.get(head)
    return str(value) if value not in (None, "") else "_"


def _head(token: TaggedToken, index: int, first: int) -> str:
    """CoNLL-U's HEAD of the input's token `index`, in a sentence from the input's token
    `first`."""
    head = token.get("head")
    if head is None:
        return "_"
    return "0" if head == index else str(head - first + 1)


def _misc(token: TaggedToken, attached: bool) -> str:
    fields = [f"NER={token['ner']}"] if token.get("ner", "O") != "O" else []
    fields += ["SpaceAfter=No"] if attached else []
    return "|".join(fields) or "_"


class ConlluWriter(Writer):
    def begin(self, part: TaggedPart) -> bytes:
        self.sentence = 0
        return f"# newdoc id = {part.index}\n".encode()

    def body(self, part: TaggedPart) -> bytes:
        lines: list[str] = []
        tokens = part.tagged.tokens
        for s in part.tagged.sentences:
            self.sentence += 1
            a, b = s.token_start - part.first_token, s.token_end - part.first_token
            words = tokens[a:b]
            if self.texts is None:
                text = " ".join(t["text"] for t in words)
            else:
                text = " ".join(self.texts[part.index][s.start : s.end].split())
            lines += [f"# sent_id = {part.index}-{self.sentence}", f"# text = {text}"]
            for j, t in enumerate(words, start=a):
                following = tokens[j + 1]["start"] if j + 1 < len(tokens) else part.next_start
                attached = self.texts is not None and following == t["end"]
                cols = [
                    str(j - a + 1),
                    t["text"],
                    _field(t, "lemma"),
                    _field(t, "upos"),
                    _field(t, "xpos"),
                    _field(t, "feats"),
                    _head(t, j + part.first_token, s.token_start),
                    _field(t, "deprel"),
                    "_",
                    _misc(t, attached),
                ]
                lines.append("\t".join(cols))
            lines.append("")
        return "".join(line + "\n" for line in lines).encode()


WRITERS: dict[str, type[Writer]] = {
    "json": JsonWriter,
    "conllu": ConlluWriter,
    "spacy": SpacyWriter,
}
