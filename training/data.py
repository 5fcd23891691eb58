"""Readers for UD English-EWT (.conllu), UNER (.iob2) and STS-B, and the POS+NER join."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Sentence:
    sent_id: str
    text: str
    words: list[str]
    upos: list[str] = field(default_factory=list)
    ner: list[str] = field(default_factory=list)
    xpos: list[str] = field(default_factory=list)
    feats: list[str] = field(default_factory=list)
    lemmas: list[str] = field(default_factory=list)
    heads: list[int] = field(default_factory=list)  # 1-based within the sentence, 0: the root
    deprels: list[str] = field(default_factory=list)


def _blocks(path: Path) -> Iterator[list[str]]:
    block: list[str] = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                block.append(line)
            elif block:
                yield block
                block = []
    if block:
        yield block


def _meta(block: list[str], key: str) -> str:
    prefix = f"# {key} = "
    return next((line[len(prefix) :] for line in block if line.startswith(prefix)), "")


def read_conllu(path: Path) -> list[Sentence]:
    """Syntactic words with UPOS, XPOS, FEATS, LEMMA, HEAD and DEPREL; multiword ranges (3-4)
    and empty nodes (5.1) are skipped."""
    sentences = []
    for block in _blocks(path):
        rows = [line.split("\t") for line in block if not line.startswith("#")]
        rows = [cols + ["_"] * (10 - len(cols)) for cols in rows if cols[0].isdigit()]
        sentences.append(
            Sentence(
                _meta(block, "sent_id"),
                _meta(block, "text"),
                words=[c[1] for c in rows],
                upos=[c[3] for c in rows],
                xpos=[c[4] for c in rows],
                feats=[c[5] for c in rows],
                lemmas=[c[2] for c in rows],
                heads=[int(c[6]) if c[6].isdigit() else 0 for c in rows],
                deprels=[c[7] for c in rows],
            )
        )
    return sentences


def read_iob2(path: Path) -> dict[str, Sentence]:
    """UNER sentences keyed by sent_id."""
    out = {}
    for block in _blocks(path):
        rows = [line.split("\t") for line in block if not line.startswith("#")]
        sid = _meta(block, "sent_id")
        out[sid] = Sentence(
            sid, _meta(block, "text"), [r[1] for r in rows], ner=[r[2] for r in rows]
        )
    return out


@dataclass
class JoinReport:
    joined: int
    skipped: list[str]  # sent_ids whose UD r2.16 and UNER (r2.9) words differ, or that UNER lacks


def load_tagging(data_dir: Path, split: str) -> tuple[list[Sentence], JoinReport]:
    """UD words+UPOS joined with UNER IOB2 on sent_id.

    Sentences whose word sequences differ (later UD tokenization fixes) are skipped, not
    realigned: they are few (about 20) and realigning would invent labels for split words.
    """
    ud = read_conllu(data_dir / "ud-ewt" / f"en_ewt-ud-{split}.conllu")
    uner = read_iob2(data_dir / "uner-ewt" / f"en_ewt-ud-{split}.iob2")
    joined, skipped = [], []
    for s in ud:
        other = uner.get(s.sent_id)
        if other is None or other.words != s.words:
            skipped.append(s.sent_id)
            continue
        s.ner = other.ner
        joined.append(s)
    return joined, JoinReport(len(joined), skipped)


def read_stsb(path: Path) -> list[tuple[str, str, float]]:
    """(sentence1, sentence2, gold score); fields 4-6, extra trailing fields ignored."""
    rows = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            if len(cols) >= 7:
                rows.append((cols[5], cols[6], float(cols[4])))
    return rows


def read_documents(path: Path) -> list[list[list[str]]]:
    """The `# text` of each sentence of a .conllu file, as documents of paragraphs of sentences
    (by its `# newdoc` and `# newpar` marks)."""
    docs: list[list[list[str]]] = []
    for block in _blocks(path):
        if any(line.startswith("# newdoc") for line in block) or not docs:
            docs.append([])
        if any(line.startswith("# newpar") for line in block) or not docs[-1]:
            docs[-1].append([])
        docs[-1][-1].append(_meta(block, "text"))
    return docs
