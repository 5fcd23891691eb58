"""/tag's answers in formats other tools read: CoNLL-U, and the JSON of spaCy's
`Doc.to_json`, which `spacy.tokens.Doc.from_json` turns back into a Doc.

CoNLL-U: one block per sentence, `# newdoc id = <input index>` before each input's first,
`# sent_id = <input>-<sentence>` and `# text` (the sentence's own text, line breaks as
spaces); ID, FORM, LEMMA, UPOS, XPOS, FEATS, then `_` for HEAD, DEPREL and DEPS (no parser);
MISC `SpaceAfter=No` where the next token starts where this one ends. A head the model lacks
is `_`. spaCy: per input `text`, `tokens` (character offsets, `pos`, `tag`, `morph`,
`lemma`), `ents` and `sents` (character offsets); pre-tokenized input is joined by spaces.
"""

from __future__ import annotations

from typing import Any

from app.core.tagging import TaggedText, TaggedToken

FORMATS = ("json", "conllu", "spacy")


def _field(token: TaggedToken, head: str) -> str:
    value = token.get(head)
    return str(value) if value not in (None, "") else "_"


def _offsets(result: TaggedText, text: str | None) -> tuple[str, list[tuple[int, int]]]:
    """The text and each token's span; pre-tokenized tokens get spans in their words joined by
    single spaces."""
    if text is not None:
        return text, [(t["start"], t["end"]) for t in result.tokens]
    spans, pos = [], 0
    for t in result.tokens:
        spans.append((pos, pos + len(t["text"])))
        pos += len(t["text"]) + 1
    return " ".join(t["text"] for t in result.tokens), spans


def conllu(results: list[TaggedText], texts: list[str] | None) -> str:
    lines: list[str] = []
    for i, result in enumerate(results):
        text, spans = _offsets(result, texts[i] if texts is not None else None)
        lines.append(f"# newdoc id = {i}")
        for k, s in enumerate(result.sentences):
            a, b = spans[s.token_start][0], spans[s.token_end - 1][1]
            lines.append(f"# sent_id = {i}-{k + 1}")
            lines.append(f"# text = {' '.join(text[a:b].split())}")
            for j in range(s.token_start, s.token_end):
                t = result.tokens[j]
                attached = j + 1 < len(spans) and spans[j + 1][0] == spans[j][1]
                cols = [
                    str(j - s.token_start + 1),
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
    return "\n".join(lines) + ("\n" if lines else "")


def spacy_docs(results: list[TaggedText], texts: list[str] | None) -> list[dict[str, Any]]:
    docs = []
    for i, result in enumerate(results):
        text, spans = _offsets(result, texts[i] if texts is not None else None)
        tokens: list[dict[str, Any]] = []
        end = 0
        for t, (a, b) in zip(result.tokens, spans, strict=True):
            tokens += _spaces(text, end, a)
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
            end = b
        tokens += _spaces(text, end, len(text))
        for j, token in enumerate(tokens):
            token["id"] = j
        ents = [
            {"start": spans[e.token_start][0], "end": spans[e.token_end - 1][1], "label": e.label}
            for e in result.entities
        ]
        sents = [
            {"start": spans[s.token_start][0], "end": spans[s.token_end - 1][1]}
            for s in result.sentences
        ]
        docs.append({"text": text, "tokens": tokens, "ents": ents, "sents": sents})
    return docs


def _spaces(text: str, end: int, start: int) -> list[dict[str, Any]]:
    """spaCy's whitespace token for the gap text[end:start], when it is more than the one space
    a token may carry after it (a line break, two spaces, leading whitespace)."""
    if end > 0 and text.startswith(" ", end):
        end += 1  # the previous token's trailing space
    if end >= start:
        return []
    gap = text[end:start]
    return [{"start": end, "end": start, "pos": "SPACE", "tag": "_SP", "morph": "", "lemma": gap}]
