"""What a layer over a finished tagger reads: the frozen tagger's piece states and inputs.

The morphology and parsing layers train on these, computed once: the tagger never changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from app.model.featurize import WordPiece, featurize, length_batches
from training.model import BiGRUModel


@dataclass
class Frozen:
    states: np.ndarray  # (T, 2H + C) float32: the tagger's states, then its inputs
    word_starts: np.ndarray  # (W,) int64


@torch.inference_mode()
def frozen_states(tagger: BiGRUModel, words: list[list[str]], wp: WordPiece) -> list[Frozen]:
    tagger.eval()
    feats = [featurize(w, wp) for w in words]
    out: list[Frozen | None] = [None] * len(feats)
    for idx, batch in length_batches(feats, 64):
        b = {k: torch.from_numpy(v) for k, v in batch.items()}
        x = tagger.tag_inputs(b["input_ids"], b["case_ids"])
        h = tagger.tagger(x, b["lengths"])
        both = torch.cat([h, x], dim=-1).numpy()  # (B, T, 2H + C)
        for j, i in enumerate(idx):
            out[i] = Frozen(both[j, : feats[i].length].copy(), feats[i].word_starts)
    return out  # type: ignore[return-value]
