"""Contextual distillation, an auxiliary loss for the tagger: on unlabeled sentences its encoder
learns to predict all-MiniLM-L6-v2's last-layer state at every piece (1 - cosine through a
linear head that is dropped at export). EWT is small; this lends the GRU what the transformer
learned about context. The teacher reads exactly our pieces, wrapped in [CLS] ... [SEP], so
its states line up one-to-one with the tagger's positions."""

from __future__ import annotations

import random
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from app.model.featurize import Features, pad_batch
from training.model import BiGRUModel, length_mask
from training.teacher import Teacher

CLS, SEP = 101, 102  # in the BERT uncased vocabulary


def wrap_pieces(input_ids: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """Our right-padded pieces as the teacher reads them: [CLS] pieces [SEP], (B, T + 2) ids and
    attention mask; position t + 1 holds our piece t."""
    B, T = input_ids.shape
    ids = torch.zeros((B, T + 2), dtype=torch.long)
    ids[:, 0] = CLS
    ids[:, 1 : T + 1] = input_ids
    ids[torch.arange(B), lengths + 1] = SEP
    return ids, length_mask(lengths + 2, T + 2).long()


class ContextDistiller:
    def __init__(self, feats: list[Features], hidden2: int, batch_size: int, seed: int):
        self.teacher = Teacher.load().requires_grad_(False)
        self.head = nn.Linear(hidden2, 384)
        self.feats = [f for f in feats if 0 < f.length <= 126]  # the teacher's 128 positions
        self.batch_size = batch_size
        self.rng = random.Random(seed)

    def batches(self) -> Iterator[dict[str, Tensor]]:
        """Length-sorted batches in shuffled order, forever."""
        order = sorted(range(len(self.feats)), key=lambda i: self.feats[i].length)
        chunks = [order[j : j + self.batch_size] for j in range(0, len(order), self.batch_size)]
        while True:
            self.rng.shuffle(chunks)
            for chunk in chunks:
                arrays = pad_batch([self.feats[i] for i in chunk])
                yield {k: torch.from_numpy(v) for k, v in arrays.items()}

    @torch.no_grad()
    def targets(self, input_ids: Tensor, lengths: Tensor) -> Tensor:  # -> (B, T, 384)
        ids, mask = wrap_pieces(input_ids, lengths)
        return self.teacher.states(ids, mask)[:, 1 : input_ids.shape[1] + 1]

    def loss(self, model: BiGRUModel, b: dict[str, Tensor]) -> Tensor:
        h = model.encode(b["input_ids"], b["case_ids"], b["lengths"])  # (B, T, 2H)
        cos = nn.functional.cosine_similarity(
            self.head(h), self.targets(b["input_ids"], b["lengths"]), dim=-1
        )
        mask = length_mask(b["lengths"], h.shape[1])
        return (1 - cos)[mask].mean()
