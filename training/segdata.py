"""Running text to train the segmenter on: EWT documents rebuilt as text with the noise real text
has (paragraphs on new lines or not, sentences on their own lines, line breaks inside sentences,
lower-case starts, no final period), corpus pseudo-documents, labels per piece, and the random
windows of 16-256 pieces training reads.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from app.model.featurize import WordPiece
from app.model.segment import TextFeatures, text_features
from app.model.text import tokenize

# Corpus sources of one sentence per line (../shared/data/sentences), for pseudo-documents.
SENTENCE_SOURCES = ("ud_gum", "ud_pud", "ud_eslspok", "ud_atis", "wikisplit", "esnli")


def pseudo_documents(
    sentences: Path, sources: tuple[str, ...], per_source: int, seed: int
) -> list[list[list[str]]]:
    """Documents of 3-30 sentences drawn from single-sentence corpus lines, up to
    `per_source` lines of each source, split into paragraphs at random."""
    rng = random.Random(seed)
    lines: dict[str, list[str]] = {s: [] for s in sources}
    source_file = sentences.with_name("sentences.source.txt")
    with sentences.open(encoding="utf-8") as text, source_file.open(encoding="utf-8") as tags:
        for line, tag in zip(text, tags, strict=True):
            pool = lines.get(tag.strip())
            if pool is not None and len(pool) < per_source:
                pool.append(line.strip())
    docs = []
    for pool in lines.values():
        rng.shuffle(pool)
        i = 0
        while i < len(pool):
            n = rng.randint(3, 30)
            chunk = pool[i : i + n]
            i += n
            cuts = sorted(
                rng.sample(range(1, len(chunk)), k=min(len(chunk) - 1, rng.randint(0, 3)))
            )
            bounds = [0, *cuts, len(chunk)]
            docs.append([chunk[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a])
    return docs


@dataclass
class Labelled:
    """A text as features, and which pieces start a sentence (1) or another word (0), -1 inside
    a word."""

    features: TextFeatures
    labels: np.ndarray  # (T,) int64


def join_document(paragraphs: list[list[str]], rng: random.Random | None) -> tuple[str, list[int]]:
    """A document as running text, and the character offset of each sentence. With no `rng`,
    sentences and paragraphs are joined by a space (how the evaluation posts documents); with
    one, by the noise described above."""
    parts: list[str] = []
    starts: list[int] = []
    pos = 0
    for p, paragraph in enumerate(paragraphs):
        for s, sentence in enumerate(paragraph):
            if p or s:
                sep = " " if rng is None else _separator(rng, new_paragraph=s == 0)
                parts.append(sep)
                pos += len(sep)
            if rng is not None:
                sentence = _noisy(sentence, rng)
            starts.append(pos)
            parts.append(sentence)
            pos += len(sentence)
    return "".join(parts), starts


def _separator(rng: random.Random, new_paragraph: bool) -> str:
    r = rng.random()
    if new_paragraph:
        return " " if r < 0.5 else "\n" if r < 0.75 else "\n\n"
    return " " if r < 0.9 else "\n" if r < 0.97 else "  "


def _noisy(sentence: str, rng: random.Random) -> str:
    if rng.random() < 0.1 and sentence[:1].isupper():
        sentence = sentence[0].lower() + sentence[1:]
    if rng.random() < 0.1 and sentence.endswith("."):
        sentence = sentence[:-1].rstrip()
    if rng.random() < 0.05 and " " in sentence:  # a line break inside the sentence
        words = sentence.split(" ")
        k = rng.randrange(1, len(words))
        sentence = " ".join(words[:k]) + "\n" + " ".join(words[k:])
    return sentence or "."


def labelled(text: str, starts: list[int], wp: WordPiece) -> Labelled:
    tokens = tokenize(text)
    f = text_features(text, tokens, wp)
    gold = set(starts)
    labels = np.full(len(f.input_ids), -1, dtype=np.int64)
    labels[f.word_starts] = [int(t.start in gold) for t in tokens]
    return Labelled(f, labels)


def window(item: Labelled, rng: random.Random, max_len: int = 256) -> dict[str, np.ndarray]:
    n = len(item.labels)
    size = min(n, rng.randint(16, max_len))
    start = 0 if rng.random() < 0.25 else rng.randint(0, n - size)
    f = item.features
    sl = slice(start, start + size)
    return {
        "input_ids": f.input_ids[sl],
        "case_ids": f.case_ids[sl],
        "space_ids": f.space_ids[sl],
        "labels": item.labels[sl],
    }


def collate(rows: list[dict[str, np.ndarray]]) -> dict[str, Tensor]:
    T = max(len(r["input_ids"]) for r in rows)
    out = {
        k: np.zeros((len(rows), T), dtype=np.int64) for k in ("input_ids", "case_ids", "space_ids")
    }
    out["labels"] = np.full((len(rows), T), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        for k in out:
            out[k][i, : len(r[k])] = r[k]
    tensors = {k: torch.from_numpy(v) for k, v in out.items()}
    tensors["lengths"] = torch.tensor([len(r["input_ids"]) for r in rows])
    return tensors
