"""Silver tags: a fine-tuned all-MiniLM-L6-v2 tagger labels unlabeled sentences for the BiGRU.

EWT train has 12.5k sentences; the transformer brings what it learned from far more text.
Fine-tuned on EWT (a case embedding added to its input, since its vocabulary is uncased), it
tags better than the BiGRU can learn from EWT alone. Its UPOS distributions and decoded NER
labels on the distillation corpus become extra training data (`bigru train --silver`).
The teacher reads exactly our pieces inside [CLS] ... [SEP], one position per piece.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from app.model.crf import CRFDecoder
from app.model.featurize import NUM_CASE_CLASSES, Features, WordPiece, length_batches
from training import teacher
from training.context import wrap_pieces
from training.data import load_tagging
from training.distill import DistillConfig, build_corpus, student_features
from training.examples import NER, UPOS, Example, batches, collate, encode_ewt, word_rows
from training.loop import Budget, Trainer, run
from training.scores import tagging_scores

MAX_PIECES = 254  # the teacher's positions, less [CLS] and [SEP], with room to spare


class TaggingTeacher(nn.Module):
    def __init__(self, dropout: float = 0.1):
        super().__init__()
        self.encoder = teacher.Teacher.load()
        self.case = nn.Embedding(NUM_CASE_CLASSES, 384, padding_idx=0)
        nn.init.zeros_(self.case.weight)  # starts as the pretrained model exactly
        self.drop = nn.Dropout(dropout)
        self.upos = nn.Linear(384, len(UPOS))
        self.ner = nn.Linear(384, len(NER))

    def forward(self, input_ids: Tensor, case_ids: Tensor, lengths: Tensor):
        """Per-piece (B, T, n_upos) and (B, T, n_ner) logits, aligned with the student's."""
        T = input_ids.shape[1]
        ids, mask = wrap_pieces(input_ids, lengths)
        cases = torch.zeros_like(ids)
        cases[:, 1 : T + 1] = case_ids
        h = self.drop(self.encoder.states(ids, mask, self.case(cases))[:, 1 : T + 1])
        return self.upos(h), self.ner(h)


@dataclass
class TeacherConfig:
    seed: int = 13
    epochs: int = 3
    batch_size: int = 32
    lr: float = 5e-5  # the pretrained encoder
    head_lr: float = 1e-3  # case embedding and heads
    threads: int = 2
    limit: int | None = None  # first N train sentences only (smoke runs)


def _ner_decoder() -> CRFDecoder:
    """IOB2-constrained decoding of softmax scores (no learned transitions)."""
    n = len(NER)
    return CRFDecoder.build(NER, np.zeros((n, n)), np.zeros(n), np.zeros(n))


@torch.inference_mode()
def predict(model: TaggingTeacher, feats: list[Features], size: int = 64):
    """Word-level UPOS log-probabilities (float16 arrays) and NER label ids, in input order."""
    model.eval()
    decoder = _ner_decoder()
    upos_out: list[np.ndarray] = [np.empty(0)] * len(feats)
    ner_out: list[np.ndarray] = [np.empty(0)] * len(feats)
    t0, done = time.time(), 0
    for k, (idx, feeds) in enumerate(length_batches(feats, size)):
        b = {name: torch.from_numpy(v) for name, v in feeds.items()}
        upos, ner = model(b["input_ids"], b["case_ids"], b["lengths"])
        upos, ner = upos.log_softmax(-1).numpy(), ner.log_softmax(-1).numpy()
        for r, i in enumerate(idx):
            starts = feats[i].word_starts
            upos_out[i] = upos[r, starts].astype(np.float16)
            ner_out[i] = np.asarray(decoder.viterbi(ner[r, starts].astype(np.float64)), np.int8)
        done += len(idx)
        if k % 200 == 0 and k:
            rate = done / (time.time() - t0)
            print(f"  tagged {done}/{len(feats)} ({rate:.0f} sentences/s)", flush=True)
    model.train()
    return upos_out, ner_out


def score(model: TaggingTeacher, examples: list[Example]) -> dict[str, float]:
    upos, ner = predict(model, [e.features for e in examples])
    return tagging_scores(
        [[UPOS[k] for k in e.labels["upos"]] for e in examples],
        [[UPOS[k] for k in u.argmax(-1)] for u in upos],
        [[NER[k] for k in e.labels["ner"]] for e in examples],
        [[NER[k] for k in n] for n in ner],
    )


def finetune(data_dir: Path, out: Path, cfg: TeacherConfig) -> dict:
    """Fine-tune the tagging teacher on EWT train; keep the best dev epoch (UPOS + NER F1) in
    out/teacher.pt. That epoch's history row back."""
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    torch.set_num_threads(cfg.threads)
    out.mkdir(parents=True, exist_ok=True)
    wp = WordPiece.from_file(teacher.vocab_file())
    train_x = encode_ewt(load_tagging(data_dir, "train")[0][: cfg.limit], wp)
    train_x = [e for e in train_x if e.features.length <= MAX_PIECES]
    dev_x = encode_ewt(load_tagging(data_dir, "dev")[0], wp)
    model = TaggingTeacher()
    step = _teacher_step(model, cfg, len(train_x))
    model.train()
    trainer = Trainer(
        batches=lambda epoch: batches(train_x, cfg.batch_size, rng),
        step=step,
        evaluate=lambda: score(model, dev_x),
        select=lambda dev: dev["upos_acc"] + dev["ner_f1"],
        keep=lambda epoch, dev: torch.save(
            {"state": model.state_dict(), "dev": dev}, out / "teacher.pt"
        ),
    )
    return run(trainer, Budget(cfg.epochs), out).best


def _teacher_step(
    model: TaggingTeacher, cfg: TeacherConfig, n_train: int
) -> Callable[[list[Example]], dict[str, float]]:
    """One optimiser step on a batch: the encoder at `lr`, the case embedding and heads at
    `head_lr`, both on one cycle over the whole run."""
    head = [*model.case.parameters(), *model.upos.parameters(), *model.ner.parameters()]
    opt = torch.optim.AdamW(
        [
            {"params": model.encoder.parameters(), "lr": cfg.lr},
            {"params": head, "lr": cfg.head_lr},
        ],
        weight_decay=0.01,
    )
    steps = cfg.epochs * -(-n_train // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[cfg.lr, cfg.head_lr], total_steps=steps, pct_start=max(0.1, 2 / steps)
    )

    def step(chunk: list[Example]) -> dict[str, float]:
        b = collate(chunk)
        upos, ner = model(b["input_ids"], b["case_ids"], b["lengths"])
        upos, ner = word_rows(upos, b["starts"]), word_rows(ner, b["starts"])
        m = b["mask"]
        loss = nn.functional.cross_entropy(upos[m], b["upos"][m])
        loss = loss + nn.functional.cross_entropy(ner[m], b["ner"][m])
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        return {"train_loss": loss.item()}

    return step


def load_teacher(path: Path) -> TaggingTeacher:
    model = TaggingTeacher()
    model.load_state_dict(torch.load(path, weights_only=False)["state"])
    return model.eval()


def write_silver(model_path: Path, data_dir: Path, out: Path, n: int, seed: int = 13) -> None:
    """Tag `n` corpus sentences (not EWT, not STS-B dev) and save features and labels."""

    wp = WordPiece.from_file(teacher.vocab_file())
    ewt = {s.text for s in load_tagging(data_dir, "train")[0]}
    corpus = [s for s in build_corpus(data_dir, DistillConfig(seed=seed)) if s not in ewt]
    feats = [f for f in student_features(corpus[: n + n // 10], wp) if f.length <= MAX_PIECES][:n]
    print(f"tagging {len(feats)} sentences", flush=True)
    upos, ner = predict(load_teacher(model_path), feats)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        out,
        input_ids=np.concatenate([f.input_ids for f in feats]).astype(np.int32),
        case_ids=np.concatenate([f.case_ids for f in feats]).astype(np.int8),
        piece_offsets=np.cumsum([0] + [f.length for f in feats]),
        word_starts=np.concatenate([f.word_starts for f in feats]).astype(np.int32),
        word_offsets=np.cumsum([0] + [len(f.word_starts) for f in feats]),
        upos_logp=np.concatenate(upos),
        ner=np.concatenate(ner),
    )


@dataclass
class SilverExample(Example):
    upos_logp: np.ndarray  # (W, n_upos) the teacher's UPOS log-probabilities


def read_silver(path: Path) -> list[SilverExample]:
    with np.load(path) as f:
        z = {k: f[k] for k in f.files}
    po, wo = z["piece_offsets"], z["word_offsets"]
    out = []
    for i in range(len(po) - 1):
        logp = z["upos_logp"][wo[i] : wo[i + 1]].astype(np.float32)
        feats = Features(
            z["input_ids"][po[i] : po[i + 1]].astype(np.int64),
            z["case_ids"][po[i] : po[i + 1]].astype(np.int64),
            z["word_starts"][wo[i] : wo[i + 1]].astype(np.int64),
        )
        labels = {"upos": logp.argmax(-1), "ner": z["ner"][wo[i] : wo[i + 1]]}
        out.append(SilverExample(feats, labels, logp))
    return out


def silver_batches(examples: list[SilverExample], size: int, rng: random.Random):
    """Length-sorted batches of silver sentences in shuffled order, forever."""
    while True:
        yield from batches(examples, size, rng)


def silver_loss(model, chunk: list[SilverExample], ner_weight: float) -> Tensor:
    """KL from the teacher's UPOS distribution, plus the CRF loss on its decoded NER labels."""
    b = collate(chunk)
    W = b["mask"].shape[1]
    target = np.zeros((len(chunk), W, len(UPOS)), dtype=np.float32)
    for i, e in enumerate(chunk):
        target[i, : len(e.upos_logp)] = e.upos_logp
    upos, ner = model.tag(b["input_ids"], b["case_ids"], b["lengths"])
    logq = word_rows(upos, b["starts"]).log_softmax(-1)[b["mask"]]
    logp = torch.from_numpy(target)[b["mask"]]
    loss = (logp.exp() * (logp - logq)).sum(-1).mean()
    if ner_weight:
        loss = loss + ner_weight * model.crf.nll(word_rows(ner, b["starts"]), b["ner"], b["mask"])
    return loss
