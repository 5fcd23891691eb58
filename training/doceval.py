"""Tagging running text as users post it: EWT + UNER documents, sent to a running service's
`POST /tag` as raw text, scored by exact character spans.

Three ways of posting the same words: one sentence per input; each paragraph as one input
(its sentences joined by a space); each whole document as one input (its paragraphs joined by
a space). A gold word counts as tagged right when a returned token has exactly its character
span and its UPOS; an entity when a returned entity has exactly its span and type; a sentence
when a returned sentence has exactly its span. With a parser, a word is attached right when its
token's span and its head's span both match gold (the root: the token is its own head), and
labelled right when its relation's universal part matches too. A refused input (any non-200
answer) counts all its words, entities and sentences as missed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from app.model.decode import iob2_spans
from training.data import Sentence, load_tagging, read_documents
from training.tokeval import gold_spans

MODES = ("sentences", "paragraphs", "documents")


@dataclass
class GoldText:
    """One input as posted, and what it should come back as."""

    text: str
    words: dict[tuple[int, int], str] = field(default_factory=dict)  # span -> UPOS
    # span -> its head's span (None: the root) and its universal relation
    arcs: dict[tuple[int, int], tuple[tuple[int, int] | None, str]] = field(default_factory=dict)
    entities: set[tuple[int, int, str]] = field(default_factory=set)
    sentences: set[tuple[int, int]] = field(default_factory=set)
    n_words: int = 0


def _add_sentence(gold: GoldText, s: Sentence, offset: int) -> None:
    spans = gold_spans(s.text, s.words)
    gold.n_words += len(s.words)
    gold.sentences.add((offset, offset + len(s.text.rstrip())))
    if spans is None:  # its words cannot be placed: they count as missed
        return
    placed = [(offset + a, offset + b) for a, b in spans]
    for span, upos in zip(placed, s.upos, strict=True):
        gold.words[span] = upos
    for span, head, rel in zip(placed, s.heads, s.deprels, strict=True):
        gold.arcs[span] = (placed[head - 1] if head else None, rel.split(":")[0])
    for e in iob2_spans(s.ner):
        gold.entities.add((offset + spans[e.start][0], offset + spans[e.end - 1][1], e.label))


def gold_texts(data_dir: Path, split: str, mode: str) -> list[GoldText]:
    """The split's joined UD + UNER sentences, grouped as `mode` posts them. Sentences the join
    skipped are left out of their paragraph."""
    joined = {s.sent_id: s for s in load_tagging(data_dir, split)[0]}
    by_text = _sent_ids(data_dir / "ud-ewt" / f"en_ewt-ud-{split}.conllu")
    docs = read_documents(data_dir / "ud-ewt" / f"en_ewt-ud-{split}.conllu")
    ids = iter(by_text)
    grouped: list[list[list[Sentence]]] = []
    for doc in docs:
        grouped.append([])
        for paragraph in doc:
            kept = [joined.get(next(ids)) for _ in paragraph]
            grouped[-1].append([s for s in kept if s is not None])
    units = {
        "sentences": ([[s]] for doc in grouped for par in doc for s in par),
        "paragraphs": ([par] for doc in grouped for par in doc if par),
        "documents": (doc for doc in grouped),
    }[mode]
    return [_join(unit) for unit in units if any(unit)]


def _sent_ids(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as f:
        return [line.split("= ", 1)[1].strip() for line in f if line.startswith("# sent_id")]


def _join(paragraphs: list[list[Sentence]]) -> GoldText:
    gold = GoldText("")
    parts: list[str] = []
    pos = 0
    for s in (s for par in paragraphs for s in par):
        if parts:
            parts.append(" ")
            pos += 1
        _add_sentence(gold, s, pos)
        parts.append(s.text)
        pos += len(s.text)
    gold.text = "".join(parts)
    return gold


def post_tag(url: str, text: str, timeout: float = 600) -> dict | None:
    """The service's answer for one input, or None when it refused it."""
    body = json.dumps({"inputs": [text]}).encode()
    request = urllib.request.Request(
        f"{url}/tag", body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())[0]
    except urllib.error.HTTPError:
        return None


@dataclass
class Counts:
    words: int = 0
    upos_right: int = 0
    refused_words: int = 0
    gold_entities: int = 0
    found_entities: int = 0
    right_entities: int = 0
    gold_sentences: int = 0
    found_sentences: int = 0
    right_sentences: int = 0
    attached: int = 0
    labelled: int = 0
    parsed: bool = False
    refused: int = 0
    texts: int = 0

    def add(self, gold: GoldText, answer: dict | None) -> None:
        self.texts += 1
        self.words += gold.n_words
        self.gold_entities += len(gold.entities)
        self.gold_sentences += len(gold.sentences)
        if answer is None:
            self.refused += 1
            self.refused_words += gold.n_words
            return
        tokens = {(t["start"], t["end"]): t["upos"] for t in answer["tokens"]}
        self.upos_right += sum(tokens.get(span) == upos for span, upos in gold.words.items())
        found = {(e["start"], e["end"], e["label"]) for e in answer["entities"]}
        self.found_entities += len(found)
        self.right_entities += len(found & gold.entities)
        sents = {(s["start"], s["end"]) for s in answer.get("sentences", [])}
        self.found_sentences += len(sents)
        self.right_sentences += len(sents & gold.sentences)
        if answer["tokens"] and "head" in answer["tokens"][0]:
            self._add_arcs(gold, answer["tokens"])

    def _add_arcs(self, gold: GoldText, tokens: list[dict]) -> None:
        self.parsed = True
        found = {}
        for i, t in enumerate(tokens):
            head = tokens[t["head"]]
            head_span = None if t["head"] == i else (head["start"], head["end"])
            found[(t["start"], t["end"])] = (head_span, t["deprel"].split(":")[0])
        for span, (head_span, rel) in gold.arcs.items():
            got = found.get(span)
            if got is not None and got[0] == head_span:
                self.attached += 1
                self.labelled += got[1] == rel

    def figures(self) -> dict[str, float | int]:
        return {
            "texts": self.texts,
            "refused": self.refused,
            "refused_word_share": _pct(self.refused_words, self.words),
            "upos": _pct(self.upos_right, self.words),
            "ner_f1": _f1(self.right_entities, self.found_entities, self.gold_entities),
            "sentence_f1": _f1(self.right_sentences, self.found_sentences, self.gold_sentences),
            **(
                {"uas": _pct(self.attached, self.words), "las": _pct(self.labelled, self.words)}
                if self.parsed
                else {}
            ),
        }


def _pct(a: int, b: int) -> float:
    return 100 * a / b if b else 0.0


def _f1(right: int, found: int, gold: int) -> float:
    return 200 * right / (found + gold) if found + gold else 0.0


def evaluate_documents(url: str, data_dir: Path, split: str = "dev") -> Iterator[tuple[str, dict]]:
    """Each mode's figures, as the service at `url` answers."""
    for mode in MODES:
        counts = Counts()
        texts = gold_texts(data_dir, split, mode)
        for i, gold in enumerate(texts, 1):
            counts.add(gold, post_tag(url, gold.text))
            if i % 100 == 0 or i == len(texts):
                print(f"\r{mode}: {i}/{len(texts)}", end="", flush=True)
        print(flush=True)
        yield mode, counts.figures()


def serve(model_dir: Path) -> tuple[subprocess.Popen, str]:
    """The service on `model_dir` in a process of its own, once it answers /health."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "BIGRU_MODEL_DIR": str(model_dir), "PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "app"], env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the service exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.2)  # polling /health until the deadline
    proc.terminate()
    raise RuntimeError("the service did not answer /health within 120 s")


def main(model_dir: Path, data_dir: Path, split: str) -> dict[str, dict]:
    proc, url = serve(model_dir)
    try:
        figures = dict(evaluate_documents(url, data_dir, split))
    finally:
        proc.terminate()
        proc.wait(30)
    print(f"{'posted as':<12}{'texts':>7}{'refused':>9}{'UPOS':>8}{'NER F1':>8}{'sent F1':>9}"
          f"{'UAS':>8}{'LAS':>8}")  # fmt: skip
    for mode, f in figures.items():
        print(
            f"{mode:<12}{f['texts']:>7}{f['refused']:>9}{f['upos']:>8.2f}{f['ner_f1']:>8.2f}"
            f"{f['sentence_f1']:>9.2f}{f.get('uas', float('nan')):>8.2f}"
            f"{f.get('las', float('nan')):>8.2f}"
        )
    return figures
