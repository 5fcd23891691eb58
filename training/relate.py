"""Put the sentence encoder's cosines on the teacher's scale, and its best components first.

Distillation by direction (1 - cosine to each teacher vector) ranks pairs well but leaves the
vectors leaning one way: every cosine comes out high, unrelated pairs near 0.75 where
all-MiniLM-L6-v2 gives 0.2. Here the encoder of a finished model is tuned so that, over each
batch, the matrix of its pairwise cosines matches the teacher's (relational distillation), at
every prefix size at once (64, 128, 256 and all 384 components, Matryoshka-style), so that a
vector's first components are a shorter vector that still works. Before tuning, the output
projection is rotated onto the principal axes of the model's own vectors (which changes no
cosine), so that the prefixes start from the components that carry the most. Batches mix corpus
sentences with STS-B train pairs, so related pairs are matched as well as unrelated ones.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from app.model.featurize import WordPiece, pad_batch
from training import teacher
from training.checkpoint import save_checkpoint
from training.data import read_stsb
from training.distill import (
    DistillConfig,
    build_corpus,
    cached_teacher_vectors,
    student_encoder,
    student_features,
)
from training.loop import Budget, Trainer, run
from training.model import BiGRUModel
from training.sts import scale_figures

PREFIXES = (64, 128, 256)  # besides the whole vector


@dataclass
class RelateConfig:
    seed: int = 7
    corpus_size: int = 20_000  # sentences drawn as distillation draws them (plus STS-B/EWT train)
    epochs: int = 6
    batch_size: int = 128  # sentences per batch, STS-B train pairs included
    pairs: int = 16  # STS-B train pairs in each batch
    lr: float = 3e-4
    max_minutes: float = 40.0
    threads: int = 1
    pair_weight: float = 1.0  # the weight of a batch's STS-B pairs' own cells in the loss


def cosines(v: Tensor) -> Tensor:
    u = nn.functional.normalize(v, dim=-1)
    return u @ u.T


def relational_loss(
    v: Tensor, teacher: Tensor, sizes: tuple[int, ...], weights: Tensor | None = None
) -> Tensor:
    """Mean squared gap between the batch's cosine matrices, ours at each prefix size and the
    teacher's; each cell by its weight (B, B), if given."""
    target = cosines(teacher)
    w = torch.ones_like(target) if weights is None else weights
    return sum(((w * (cosines(v[:, :d]) - target) ** 2).mean() for d in sizes), torch.zeros(()))


def pair_weights(size: int, pairs: int, weight: float) -> Tensor:
    """(size, size) ones, but `weight` in the cells of the batch's last `pairs` pairs of rows
    (a, b, a, b, ...): a pair people rated, where the gap is measured."""
    w = torch.ones(size, size)
    a = torch.arange(size - 2 * pairs, size, 2)
    w[a, a + 1] = w[a + 1, a] = weight
    return w


def rotate_to_principal_axes(model: BiGRUModel, vectors: np.ndarray) -> None:
    """Turn the output projection so that its components run from the most to the least
    variance of the model's own unit vectors (a rotation: no cosine changes)."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True).clip(1e-12)
    _, axes = np.linalg.eigh(unit.T @ unit)
    rotation = torch.from_numpy(np.ascontiguousarray(axes[:, ::-1])).float()  # (D, D)
    proj = model.sent_proj
    assert proj is not None
    with torch.no_grad():
        proj.weight.copy_(rotation.T @ proj.weight)
        proj.bias.copy_(rotation.T @ proj.bias)


def relate(
    model: BiGRUModel, meta: dict, data_dir: Path, out: Path, cfg: RelateConfig, cache_dir: Path
) -> dict:
    """Tune `model`'s sentence encoder; the epoch whose full-size cosines are nearest the
    teacher's on STS-B dev is kept in out/sentence.pt."""
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    torch.set_num_threads(cfg.threads)
    out.mkdir(parents=True, exist_ok=True)
    wp = WordPiece.from_file(teacher.vocab_file())
    corpus = build_corpus(data_dir, DistillConfig(seed=cfg.seed, corpus_size=cfg.corpus_size))
    targets = torch.from_numpy(cached_teacher_vectors(corpus, cache_dir))
    feats = student_features(corpus, wp)
    encode = student_encoder(model, wp)
    teacher_encode = partial(cached_teacher_vectors, cache_dir=cache_dir)
    rotate_to_principal_axes(model, encode(corpus[:5000]))
    index = {s: i for i, s in enumerate(corpus)}
    pairs = [(index[a], index[b]) for a, b, _ in read_stsb(data_dir / "stsb" / "sts-train.csv")
             if a in index and b in index]  # fmt: skip
    params = model.sentence_parameters()
    opt = torch.optim.Adam(params, lr=cfg.lr)
    size = model.cfg.sent_dim

    def batches(epoch: int) -> list[list[int]]:
        order = list(range(len(corpus)))
        rng.shuffle(order)
        single = cfg.batch_size - 2 * cfg.pairs
        chunks = []
        for j in range(0, len(order) - single + 1, single):
            picked = rng.sample(pairs, cfg.pairs)
            chunks.append(order[j : j + single] + [i for pair in picked for i in pair])
        return chunks

    def step(idx: list[int]) -> dict[str, float]:
        b = pad_batch([feats[i] for i in idx])
        v = model.sentence(torch.from_numpy(b["input_ids"]), torch.from_numpy(b["lengths"]))
        weights = pair_weights(len(idx), cfg.pairs, cfg.pair_weight)
        loss = relational_loss(v, targets[idx], (*PREFIXES, size), weights)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        return {"loss": loss.item()}

    def keep(epoch: int, row: dict) -> None:
        meta_out = {**meta, "relate": asdict(cfg), "relate_dev": row}
        save_checkpoint(model, out / "sentence.pt", meta_out)

    trainer = Trainer(
        batches=batches,
        step=step,
        evaluate=lambda: scale_figures(encode, teacher_encode, data_dir, sizes=PREFIXES),
        select=lambda dev: -dev[f"gap_{size}"],
        keep=keep,
        evaluate_first=True,
    )
    history = run(trainer, Budget(cfg.epochs, cfg.max_minutes), out, "relate_history.json")
    return {"best": history.best, "history": history.rows}
