"""A user's labelled file: CoNLL-style columns (or CoNLL-U), checked before any training.

One token per line, columns separated by a tab (or else by spaces), the word first; a blank line
between sentences; `#` lines and CoNLL-2003's `-DOCSTART-` lines skipped. CoNLL-U (an integer
id first, ten columns) reads its form and, by default, its UPOS column; multiword ranges and
empty nodes are skipped; entities written in its MISC column as `NER=B-PER` (the others O, as
/tag's CoNLL-U writes them) are a `ner` column too, and its HEAD and DEPREL, when every word has
them, a dependency tree per sentence (`Table.trees`). A label column whose labels carry IOB1,
IOB2 or BIOES prefixes is a span task, read into IOB2; any other is a per-token softmax task.
Every problem is a `ConllError` naming the file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from app.model.lemma import edit_script

# a CoNLL-U id: a word (3), a multiword range (3-4), an empty node (5.1)
_CONLLU_ID = re.compile(r"^\d+([-.]\d+)?$")
_PREFIXED = re.compile(r"^([A-Z])-(.+)$")
_SPAN_PREFIXES = {"B", "I", "E", "S"}  # IOB1, IOB2 and BIOES
RESERVED = {"text", "start", "end", "head", "deprel"}  # a token's own fields in /tag
MISC = 10  # CoNLL-U's MISC column, read for its NER= entities
LEMMA = "lemma"  # a label column of this name holds lemmas


class ConllError(ValueError):
    """A file that cannot be trained on; str() is the one line to show."""


@dataclass
class Column:
    """One label column of the file: which column (1-based) and the head it trains."""

    name: str
    index: int


@dataclass
class Head:
    name: str
    decoder: str  # "softmax" or "crf"
    labels: list[str]  # a CRF head's are IOB2: "O", then B-/I- per type


Trees = list[tuple[list[int], list[str]]]  # per sentence: HEAD (1-based, 0 the root), DEPREL


@dataclass
class Table:
    """The sentences of one file: words and, per head, one label per word."""

    path: Path
    words: list[list[str]]
    labels: dict[str, list[list[str]]]
    lines: list[list[int]]  # each word's line in the file
    trees: Trees | None = None  # CoNLL-U's HEAD and DEPREL, when every word has them


def parse_task(text: str) -> Column:
    """`name:N` from the command line."""
    name, _, index = text.partition(":")
    if not name.isidentifier() or name in RESERVED or not index.isdigit() or int(index) < 2:
        raise ConllError(f"--task {text}: expected name:N, N >= 2 the 1-based label column")
    return Column(name, int(index))


def _rows(path: Path) -> list[list[tuple[int, list[str]]]]:
    """(line number, columns) of each token line, per sentence."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ConllError(f"{path}: cannot read: {e}") from None
    sentences: list[list[tuple[int, list[str]]]] = [[]]
    for number, line in enumerate(lines, 1):
        if not line.strip():
            if sentences[-1]:
                sentences.append([])
        elif not line.startswith(("#", "-DOCSTART-")):
            cols = line.split("\t") if "\t" in line else line.split()
            sentences[-1].append((number, [c.strip() for c in cols]))
    sentences = [s for s in sentences if s]
    if not sentences:
        raise ConllError(f"{path}: no sentences (empty file, or comments only)")
    return sentences


def _is_conllu(sentences: list[list[tuple[int, list[str]]]]) -> bool:
    _, first = sentences[0][0]
    return len(first) == 10 and _CONLLU_ID.match(first[0]) is not None


def read_table(path: Path, columns: list[Column] | None) -> tuple[Table, list[Column]]:
    """The file's words and label columns (None: UPOS of CoNLL-U, else the last column)."""
    sentences = _rows(path)
    conllu = _is_conllu(sentences)
    width = len(sentences[0][0][1])
    if width < 2:
        raise ConllError(f"{path}:{sentences[0][0][0]}: no label column (one column only)")
    if columns is None:
        columns = [Column("tags", 4 if conllu else width)]
        if conllu and any("NER=" in cols[MISC - 1] for s in sentences for _, cols in s):
            columns.append(Column("ner", MISC))
    words: list[list[str]] = []
    labels: dict[str, list[list[str]]] = {c.name: [] for c in columns}
    lines: list[list[int]] = []
    for sentence in sentences:
        if conllu:  # multiword ranges (3-4) and empty nodes (5.1) carry no label
            sentence = [(n, cols) for n, cols in sentence if cols[0].isdigit()]
        for number, cols in sentence:
            if len(cols) != width:
                raise ConllError(
                    f"{path}:{number}: {len(cols)} columns, but the file's first row has {width}"
                )
            for c in columns:
                if c.index > width:
                    raise ConllError(
                        f"{path}:{number}: no column {c.index} (the rows have {width})"
                    )
                if _label(cols, c, conllu) in ("", "_"):
                    raise ConllError(f"{path}:{number}: empty label in column {c.index}")
        words.append([cols[1 if conllu else 0] for _, cols in sentence])
        lines.append([number for number, _ in sentence])
        for c in columns:
            labels[c.name].append([_label(cols, c, conllu) for _, cols in sentence])
    trees = _trees(sentences) if conllu else None
    return Table(path, words, labels, lines, trees), columns


def _label(cols: list[str], column: Column, conllu: bool) -> str:
    """A row's label in `column`: MISC's NER= entity (O without one), or the column itself."""
    if conllu and column.index == MISC:
        found = [f[4:] for f in cols[MISC - 1].split("|") if f.startswith("NER=")]
        return found[0] if found else "O"
    return cols[column.index - 1]


def _trees(
    sentences: list[list[tuple[int, list[str]]]],
) -> list[tuple[list[int], list[str]]] | None:
    """Each sentence's HEAD and DEPREL, if every word has them (multiword ranges and empty
    nodes skipped)."""
    words = [[cols for _, cols in s if cols[0].isdigit()] for s in sentences]
    if not all(cols[6].isdigit() and cols[7] not in ("", "_") for s in words for cols in s):
        return None
    return [([int(cols[6]) for cols in s], [cols[7] for cols in s]) for s in words]


def _scheme(tables: list[Table], name: str) -> str:
    """ "crf" if the labels of every file are O plus IOB1/IOB2/BIOES-prefixed types, "softmax" if
    none is prefixed; anything else is an unknown scheme, shown at its first odd label."""
    found = {t for table in tables for s in table.labels[name] for t in s}
    prefixes = {m.group(1) for t in found if (m := _PREFIXED.match(t))}
    plain = {t for t in found if t != "O" and not _PREFIXED.match(t)}
    if not prefixes:
        return "softmax"
    if prefixes <= _SPAN_PREFIXES and not plain:
        return "crf"
    bad = {t for t in found if (m := _PREFIXED.match(t)) and m.group(1) not in _SPAN_PREFIXES}
    odd = bad or plain  # a foreign prefix (BILOU's U-, L-), or a plain label among IOB ones
    table, k, i = next(
        (table, k, i)
        for table in tables
        for k, s in enumerate(table.labels[name])
        for i, t in enumerate(s)
        if t in odd
    )
    raise ConllError(
        f"{table.path}:{table.lines[k][i]}: label {table.labels[name][k][i]!r} in column "
        f"{name!r}: the column's labels are not IOB1, IOB2, BIOES, nor all plain"
    )


def to_iob2(tags: list[str]) -> list[str]:
    """IOB1, IOB2 or BIOES tags of one sentence as IOB2: every entity opens with B-."""
    out: list[str] = []
    for i, tag in enumerate(tags):
        if tag == "O":
            out.append(tag)
            continue
        prefix, kind = tag[0], tag[2:]
        previous = tags[i - 1] if i else "O"
        opens = prefix in ("B", "S") or previous == "O" or previous[2:] != kind
        opens = opens or previous[0] in ("E", "S")
        out.append(("B-" if opens else "I-") + kind)
    return out


def heads_of(tables: list[Table]) -> list[Head]:
    """Each label column's head, its scheme and label list from all files' labels; span columns
    are rewritten to IOB2 in place, and a column named `lemma` to the edit script that turns
    each word into its lemma (app.model.lemma): a head the service answers as lemmas."""
    heads = []
    for name in tables[0].labels:
        if name == LEMMA:
            for table in tables:
                table.labels[name] = [
                    [edit_script(w, lemma) for w, lemma in zip(ws, ls, strict=True)]
                    for ws, ls in zip(table.words, table.labels[name], strict=True)
                ]
            found = {t for table in tables for s in table.labels[name] for t in s}
            heads.append(Head(name, "lemma", sorted(found)))
            continue
        decoder = _scheme(tables, name)
        if decoder == "crf":
            for table in tables:
                table.labels[name] = [to_iob2(s) for s in table.labels[name]]
        found = {t for table in tables for s in table.labels[name] for t in s}
        if decoder == "crf":
            kinds = sorted({t[2:] for t in found if t != "O"})
            labels = ["O", *(f"{p}-{k}" for k in kinds for p in "BI")]
        else:
            labels = sorted(found)
        heads.append(Head(name, decoder, labels))
    return heads
