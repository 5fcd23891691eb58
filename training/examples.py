"""Training examples: label lists, sentences as features plus label ids per head, batches."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from app.model.featurize import Features, WordPiece, featurize, pad_batch
from training.data import Sentence

UPOS = ["ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON",
        "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X"]  # fmt: skip
NER = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
EWT_LABELS = {"upos": UPOS, "ner": NER}  # the heads of the EWT tagger, in output order


@dataclass
class Example:
    features: Features
    labels: dict[str, np.ndarray]  # head name -> (W,) label ids


def encode(
    words: list[list[str]], tags: dict[str, list[list[str]]], labels: dict[str, list[str]],
    wp: WordPiece,
) -> list[Example]:  # fmt: skip
    """Sentences as features and, for each head, the ids of their labels in `labels[head]`."""
    index = {name: {t: i for i, t in enumerate(labels[name])} for name in tags}
    return [
        Example(
            featurize(sentence, wp),
            {name: np.array([index[name][t] for t in tags[name][k]]) for name in tags},
        )
        for k, sentence in enumerate(words)
    ]


def encode_ewt(sentences: list[Sentence], wp: WordPiece) -> list[Example]:
    """EWT sentences (UPOS and NER joined) as examples of the `upos` and `ner` heads."""
    tags = {"upos": [s.upos for s in sentences], "ner": [s.ner for s in sentences]}
    return encode([s.words for s in sentences], tags, EWT_LABELS, wp)


def lexicon(examples: list[Example], vocab_size: int, min_count: int) -> tuple[int, Tensor]:
    """Rows for the pieces seen at least `min_count` times in train: (rows, piece id -> row)."""
    counts = np.bincount(
        np.concatenate([e.features.input_ids for e in examples]), minlength=vocab_size
    )
    frequent = np.flatnonzero(counts >= min_count)
    frequent = frequent[frequent != 0]
    index = np.ones(vocab_size, dtype=np.int64)  # 1: rare
    index[0] = 0  # padding
    index[frequent] = np.arange(2, 2 + len(frequent))
    return 2 + len(frequent), torch.from_numpy(index)


def collate(batch: list[Example]) -> dict[str, Tensor]:
    """Padded pieces, each word's first piece (`starts`), the word `mask` and, under each head's
    name, its label ids (B, W)."""
    arrays = pad_batch([e.features for e in batch])
    W = max(len(e.features.word_starts) for e in batch)
    starts = np.zeros((len(batch), W), dtype=np.int64)
    mask = np.zeros((len(batch), W), dtype=bool)
    labels = {name: np.zeros((len(batch), W), dtype=np.int64) for name in batch[0].labels}
    for i, e in enumerate(batch):
        w = len(e.features.word_starts)
        starts[i, :w], mask[i, :w] = e.features.word_starts, True
        for name, ids in e.labels.items():
            labels[name][i, :w] = ids
    out = {k: torch.from_numpy(v) for k, v in arrays.items()}
    out.update(starts=torch.from_numpy(starts), mask=torch.from_numpy(mask))
    out.update({name: torch.from_numpy(v) for name, v in labels.items()})
    return out


def batches(examples: list[Example], size: int, rng: random.Random) -> list[list[Example]]:
    """Length-sorted chunks (little padding), in shuffled order; noise varies them per epoch."""
    order = sorted(
        range(len(examples)), key=lambda i: examples[i].features.length + rng.random() * 3
    )
    chunks = [[examples[i] for i in order[j : j + size]] for j in range(0, len(order), size)]
    rng.shuffle(chunks)
    return chunks


def word_rows(x: Tensor, starts: Tensor) -> Tensor:  # (B, T, C), (B, W) -> (B, W, C)
    return x.gather(1, starts.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
