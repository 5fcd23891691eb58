"""/tag's answers written part by part (app.core.runs), so that a long document's answer is
bytes on the wire, never a document's worth of Python objects: JSON, CoNLL-U, and the JSON of
spaCy's `Doc.to_json`, which `spacy.tokens.Doc.from_json` turns back into a Doc. Each writer
gives, over all its parts, the same bytes as writing the whole answer at once.

JSON: a list with, per input, `tokens`, `entities` and `sentences` (app.core.tagging).
CoNLL-U: one block per sentence, `# newdoc id = <input index>` before each input's first,
`# sent_id = <input>-<sentence>` and `# text` (the sentence's own text, line breaks as
spaces); ID, FORM, LEMMA, UPOS, XPOS, FEATS, then `_` for HEAD, DEPREL and DEPS (no parser);
MISC `SpaceAfter=No` where the next token starts where this one ends. A head the model lacks
is `_`. spaCy: per input `text`, `tokens` (character offsets, `pos`, `tag`, `morph`,
`lemma`), `ents` and `sents` (character offsets); pre-tokenized input is joined by spaces.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from app.core.runs import TaggedPart
from app.core.tagging import Entity, Sentence, TaggedToken


class Writer:
    """An answer written part by part: `part` for each, in order, then `end`. An input's parts
    come together, its first starting it (`begin`) and its last ending it (`finish`)."""

    def __init__(self, texts: list[str] | None) -> None:
        self.texts = texts  # the raw inputs; None: pre-tokenized
        self.current = -1  # the input being written

    def part(self, part: TaggedPart) -> Iterator[bytes]:
        if part.index != self.current:
            self.current = part.index
            yield self.begin(part)
        yield self.body(part)
        if part.last:
            yield from self.finish()

    def begin(self, part: TaggedPart) -> bytes:
        return b""

    def body(self, part: TaggedPart) -> bytes:
        raise NotImplementedError

    def finish(self) -> Iterator[bytes]:
        return iter(())

    def end(self) -> bytes:
        return b""


class _List:
    """A JSON list written a run of items at a time, each run orjson's bytes of a list."""

    def __init__(self) -> None:
        self.empty = True

    def more(self, items: bytes) -> bytes:
        """What continues this list with the items of `items` (brackets cut)."""
        if items == b"[]":
            return b""
        lead = b"" if self.empty else b","
        self.empty = False
        return lead + items[1:-1]


class _Items:
    """The top list of an answer, an item at a time."""

    def __init__(self) -> None:
        self.opened = False

    def next(self) -> bytes:
        """What goes before the next item."""
        lead = b"," if self.opened else b"["
        self.opened = True
        return lead

    def end(self) -> bytes:
        return b"]" if self.opened else b"[]"


class _Rows:
    """Rows of `width` integers (and optionally one float), held as arrays until they are
    written after the tokens: 8 bytes a number, where an object costs some hundred."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.ints: array[int] = array("q")
        self.floats: array[float] = array("d")

    def add(self, ints: Iterable[int], value: float | None = None) -> None:
        self.ints.extend(ints)
        if value is not None:
            self.floats.append(value)

    def chunks(self, size: int = 4096) -> Iterator[list[tuple[list[int], float | None]]]:
        """The rows back, `size` at a time, each its integers and its float (None if none)."""
        w = self.width
        for first in range(0, len(self.ints) // w, size):
            flat = self.ints[first * w : (first + size) * w].tolist()
            values = self.floats[first : first + size].tolist() or [None] * (len(flat) // w)
            yield [(flat[k * w : (k + 1) * w], v) for k, v in enumerate(values)]


class _Labels:
    """Each label's number in held rows."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._ids: dict[str, int] = {}

    def id(self, label: str) -> int:
        if label not in self._ids:
            self._ids[label] = len(self.names)
            self.names.append(label)
        return self._ids[label]


class JsonWriter(Writer):
    """The bytes orjson writes for the whole list of TaggedTexts. An input answered in one part
    is written at once; a longer one's tokens as they come, its entities and sentences held as
    numbers and written after them."""

    def __init__(self, texts: list[str] | None) -> None:
        super().__init__(texts)
        self.inputs = _Items()

    def part(self, part: TaggedPart) -> Iterator[bytes]:
        if part.first_token == 0 and part.last:  # the whole input
            yield self.inputs.next() + orjson.dumps(part.tagged)
            return
        yield from super().part(part)

    def begin(self, part: TaggedPart) -> bytes:
        self.tokens = _List()
        self.entities, self.sentences, self.labels = _Rows(5), _Rows(4), _Labels()
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
        written = _List()
        for rows in self.entities.chunks():
            entities = [
                Entity(text[a:b], labels[label], a, b, first, end, score or 0.0)
                for (a, b, first, end, label), score in rows
            ]
            yield written.more(orjson.dumps(entities))
        yield b'],"sentences":['
        written = _List()
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
                    "_",
                    "_",
                    "_",
                    "SpaceAfter=No" if attached else "_",
                ]
                lines.append("\t".join(cols))
            lines.append("")
        return "".join(line + "\n" for line in lines).encode()


class SpacyWriter(Writer):
    """Per input, JSON that `Doc.from_json` reads; a pre-tokenized input (one part: it is one
    sentence) is its words joined by single spaces. Entities and sentences are held as numbers
    until the input's tokens are written."""

    def __init__(self, texts: list[str] | None) -> None:
        super().__init__(texts)
        self.inputs = _Items()

    def begin(self, part: TaggedPart) -> bytes:
        self.tokens = _List()
        self.ents, self.sents, self.labels = _Rows(3), _Rows(2), _Labels()
        self.end_offset = 0  # where the last token written ends
        self.next_id = 0
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
        written = _List()
        for rows in self.ents.chunks():
            ents = [{"start": a, "end": b, "label": labels[k]} for (a, b, k), _ in rows]
            yield written.more(orjson.dumps(ents))
        yield b'],"sents":['
        written = _List()
        for rows in self.sents.chunks():
            yield written.more(orjson.dumps([{"start": a, "end": b} for (a, b), _ in rows]))
        yield b"]}"

    def end(self) -> bytes:
        return self.inputs.end()


def _spaces(text: str, end: int, start: int) -> list[dict[str, Any]]:
    """spaCy's whitespace token for the gap text[end:start], when it is more than the one space
    a token may carry after it (a line break, two spaces, leading whitespace)."""
    if end > 0 and text.startswith(" ", end):
        end += 1  # the previous token's trailing space
    if end >= start:
        return []
    gap = text[end:start]
    return [{"start": end, "end": start, "pos": "SPACE", "tag": "_SP", "morph": "", "lemma": gap}]


WRITERS: dict[str, type[Writer]] = {
    "json": JsonWriter,
    "conllu": ConlluWriter,
    "spacy": SpacyWriter,
}
