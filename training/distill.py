"""Distil all-MiniLM-L6-v2 into the sentence encoder (loss 1 - cosine to the teacher).

The sentence encoder shares nothing trainable with the tagger (only the frozen input table),
so it is trained on its own and merged with a tagger checkpoint at export
(`bigru export --tagger ... --sentence ...`). Teacher vectors are computed once and cached.
Selection on STS-B dev only; STS-B dev sentences are kept out of the distillation corpus.
"""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from app.model.featurize import Features, WordPiece, featurize, length_batches, pad_batch
from app.model.text import split_words
from training import teacher
from training.checkpoint import load_checkpoint, save_checkpoint
from training.data import load_tagging, read_stsb
from training.loop import Budget, Trainer, run
from training.model import BiGRUModel, ModelConfig
from training.sts import stsb_spearman


@dataclass
class DistillConfig:
    seed: int = 13
    corpus_size: int = 300_000  # sentences drawn from sentences/ (plus STS-B train and EWT train)
    gutenberg_weight: float = 0.3  # down-weights old literary prose against modern genres
    epochs: int = 4
    batch_size: int = 128
    lr: float = 1e-3
    evals_per_epoch: int = 4
    max_minutes: float = 30.0
    threads: int = 2
    sent_input: int = ModelConfig.sent_input  # the student's shape
    sent_hidden: int = ModelConfig.sent_hidden


def build_corpus(data_dir: Path, cfg: DistillConfig) -> list[str]:
    rng = random.Random(cfg.seed)
    lines = (data_dir / "sentences" / "sentences.txt").read_text(encoding="utf-8").splitlines()
    sources = (
        (data_dir / "sentences" / "sentences.source.txt").read_text(encoding="utf-8").splitlines()
    )
    weights = [cfg.gutenberg_weight if s == "gutenberg" else 1.0 for s in sources]
    # Weighted sampling without replacement (Efraimidis-Spirakis keys).
    keys = [rng.random() ** (1.0 / w) for w in weights]
    picked = sorted(range(len(lines)), key=keys.__getitem__, reverse=True)[: cfg.corpus_size]
    corpus = [lines[i] for i in picked]
    sts_train = read_stsb(data_dir / "stsb" / "sts-train.csv")
    corpus += sorted({s for row in sts_train for s in row[:2]})
    corpus += [s.text for s in load_tagging(data_dir, "train")[0]]
    dev = {s for row in read_stsb(data_dir / "stsb" / "sts-dev.csv") for s in row[:2]}
    return [s for s in dict.fromkeys(corpus) if s not in dev and s.strip()]


@torch.inference_mode()
def teacher_vectors(sentences: list[str], batch: int = 64, progress: bool = True) -> np.ndarray:
    """L2-normalised teacher embeddings, (N, 384) float32, computed in length-sorted batches."""
    model, tok = teacher.Teacher.load(), teacher.tokenizer()
    enc = [e.ids for e in tok.encode_batch(sentences)]
    order = np.argsort([len(e) for e in enc])
    out = np.zeros((len(sentences), 384), dtype=np.float32)
    t0 = time.time()
    for k, j in enumerate(range(0, len(order), batch)):
        idx = order[j : j + batch]
        T = max(len(enc[i]) for i in idx)
        ids = torch.zeros((len(idx), T), dtype=torch.long)
        mask = torch.zeros((len(idx), T), dtype=torch.long)
        for r, i in enumerate(idx):
            ids[r, : len(enc[i])] = torch.tensor(enc[i])
            mask[r, : len(enc[i])] = 1
        out[idx] = model(ids, mask).numpy()
        if progress and k % 200 == 0:
            rate = (j + len(idx)) / max(time.time() - t0, 1e-9)
            print(f"  teacher {j + len(idx)}/{len(order)} ({rate:.0f} sentences/s)", flush=True)
    return out


def cached_teacher_vectors(sentences: list[str], cache_dir: Path) -> np.ndarray:
    key = hashlib.sha256("\n".join(sentences).encode()).hexdigest()[:16]
    path = cache_dir / f"teacher-{key}.npy"
    if path.exists():
        return np.load(path)
    vectors = teacher_vectors(sentences)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def student_features(sentences: list[str], wp: WordPiece) -> list[Features]:
    return [featurize(split_words(s) or ["[UNK]"], wp) for s in sentences]


def student_encoder(model, wp: WordPiece, batch: int = 256):
    """sentences -> (N, D) vectors with the torch student (for STS-B during training)."""

    @torch.inference_mode()
    def encode(sentences: list[str]) -> np.ndarray:
        feats = student_features(sentences, wp)
        out = np.zeros((len(feats), model.cfg.sent_dim), dtype=np.float32)
        for idx, b in length_batches(feats, batch):
            ids, lengths = torch.from_numpy(b["input_ids"]), torch.from_numpy(b["lengths"])
            out[idx] = model.sentence(ids, lengths).numpy()
        return out

    return encode


def distill(data_dir: Path, out: Path, cfg: DistillConfig, cache_dir: Path) -> dict:
    """Train the sentence encoder on the corpus, scored on STS-B dev `evals_per_epoch` times an
    epoch; the best in out/sentence.pt. Its dev figure and history back."""
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    torch.set_num_threads(cfg.threads)
    out.mkdir(parents=True, exist_ok=True)
    shape = ModelConfig(sent_input=cfg.sent_input, sent_hidden=cfg.sent_hidden)
    model = BiGRUModel(shape, teacher.input_table()).eval()
    wp = WordPiece.from_file(teacher.vocab_file())
    corpus = build_corpus(data_dir, cfg)
    print(f"corpus: {len(corpus)} sentences", flush=True)
    targets = torch.from_numpy(cached_teacher_vectors(corpus, cache_dir))
    feats = student_features(corpus, wp)
    opt = torch.optim.Adam(_sentence_only(model), lr=cfg.lr)
    order = sorted(range(len(feats)), key=lambda i: feats[i].length)
    chunks = [order[j : j + cfg.batch_size] for j in range(0, len(order), cfg.batch_size)]
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.epochs * len(chunks), pct_start=0.05
    )

    def shuffled(epoch: int) -> list[list[int]]:
        rng.shuffle(chunks)  # in place: each epoch reorders the one before
        return chunks

    def step(idx: list[int]) -> dict[str, float]:
        b = pad_batch([feats[i] for i in idx])
        v = model.sentence(torch.from_numpy(b["input_ids"]), torch.from_numpy(b["lengths"]))
        loss = (1 - torch.nn.functional.cosine_similarity(v, targets[idx])).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        return {"loss": loss.item()}

    def keep(epoch: int, dev: dict[str, float]) -> None:
        meta = dict(distill=asdict(cfg), stsb_dev=dev["stsb_dev"], corpus_size=len(corpus))
        save_checkpoint(model, out / "sentence.pt", meta)

    encode = student_encoder(model, wp)
    trainer = Trainer(
        batches=shuffled,
        step=step,
        evaluate=lambda: {"stsb_dev": stsb_spearman(encode, data_dir)},
        select=lambda dev: dev["stsb_dev"],
        keep=keep,
        evals_per_epoch=cfg.evals_per_epoch,
    )
    history = run(trainer, Budget(cfg.epochs, cfg.max_minutes), out, "distill_history.json")
    return {"stsb_dev": history.best["stsb_dev"], "history": history.rows}


def _sentence_only(model: BiGRUModel) -> list[nn.Parameter]:
    """The sentence encoder's parameters, the only ones left trainable."""
    params = model.sentence_parameters()
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    return params


def sts_finetune(
    data_dir: Path,
    init: Path,
    out: Path,
    epochs: int = 5,
    lr: float = 1e-4,
    batch_size: int = 32,
    seed: int = 13,
    threads: int = 2,
) -> dict:
    """Tune the distilled sentence encoder on STS-B train pairs with the CoSENT ranking loss;
    select on STS-B dev (evaluated before tuning too, so tuning is kept only if it helps)."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    torch.set_num_threads(threads)
    out.mkdir(parents=True, exist_ok=True)
    model, ckpt = load_checkpoint(init)
    wp = WordPiece.from_file(teacher.vocab_file())
    pairs = read_stsb(data_dir / "stsb" / "sts-train.csv")
    left = student_features([p[0] for p in pairs], wp)
    right = student_features([p[1] for p in pairs], wp)
    gold = torch.tensor([p[2] for p in pairs])
    opt = torch.optim.Adam(model.sentence_parameters(), lr=lr)
    order = list(range(len(pairs)))

    def shuffled(epoch: int) -> list[list[int]]:
        rng.shuffle(order)  # in place: each epoch reorders the one before
        return [order[j : j + batch_size] for j in range(0, len(order), batch_size)]

    def step(idx: list[int]) -> dict[str, float]:
        a, b = pad_batch([left[i] for i in idx]), pad_batch([right[i] for i in idx])
        loss = cosent(model, a, b, gold[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    def keep(epoch: int, dev: dict[str, float]) -> None:
        tuned = {"sts_finetune": {"epochs": epoch, "lr": lr}} if epoch else {}
        meta = dict(ckpt["meta"], stsb_dev=dev["stsb_dev"], **tuned)
        save_checkpoint(model, out / "sentence.pt", meta)

    encode = student_encoder(model, wp)
    trainer = Trainer(
        batches=shuffled,
        step=step,
        evaluate=lambda: {"stsb_dev": stsb_spearman(encode, data_dir)},
        select=lambda dev: dev["stsb_dev"],
        keep=keep,
        evaluate_first=True,
    )
    history = run(trainer, Budget(epochs), out, "sts_history.json")
    return {"stsb_dev": history.best["stsb_dev"], "history": history.rows}


def cosent(
    model: BiGRUModel, a: dict[str, np.ndarray], b: dict[str, np.ndarray], gold: Tensor
) -> Tensor:
    """CoSENT: every pair ranked above another by gold should be above it by cosine."""
    u = model.sentence(torch.from_numpy(a["input_ids"]), torch.from_numpy(a["lengths"]))
    v = model.sentence(torch.from_numpy(b["input_ids"]), torch.from_numpy(b["lengths"]))
    cos = torch.nn.functional.cosine_similarity(u, v) * 20  # (B,)
    diff = cos[None, :] - cos[:, None]  # [i, j] = cos_j - cos_i
    above = gold[:, None] > gold[None, :]
    return torch.logsumexp(torch.cat([torch.zeros(1), diff[above]]), dim=0)
