"""Train the tagger encoder (UPOS + NER CRF) on UD English-EWT joined with UNER.

Seeded; length-bucketed batches; the best dev checkpoint (UPOS acc + NER F1) is kept;
progress is printed; history.json and curves.png are written beside the checkpoint.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from app.decode import CRFDecoder
from app.featurize import Features, WordPiece, featurize, pad_batch
from training import teacher
from training.data import Sentence, load_tagging
from training.evaluate import tagging_scores
from training.model import BiGRUModel, ModelConfig

UPOS = ["ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON",
        "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X"]  # fmt: skip
NER = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]


@dataclass
class TrainConfig:
    seed: int = 13
    epochs: int = 40
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-5
    patience: int = 8  # epochs without dev improvement before stopping
    max_minutes: float = 40.0  # wall-clock budget for the whole run
    threads: int = 2
    init: str | None = None  # fine-tune this checkpoint (model, lexicon); LR decays linearly
    aux_sentences: int = 0  # unlabeled sentences for contextual distillation (0: off)
    aux_weight: float = 1.0
    silver: str | None = None  # silver tags from `bigru silver` (.npz), trained beside gold
    silver_batch_size: int = 64
    silver_ner_weight: float = 0.5  # weight of the CRF loss on the teacher's NER labels
    select: str = "sum"  # best dev epoch by UPOS acc + NER F1 ("sum"), or by UPOS ("upos") ...
    ner_floor: float = 72.0  # ... among epochs whose NER F1 is at least this
    ema: float = 0.0  # >0: evaluate and keep an exponential moving average of the weights
    lex_min_count: int = 2  # pieces seen this often in train get a trainable lexical row
    limit: int | None = None  # first N train sentences only (smoke runs)


@dataclass
class Example:
    features: Features
    upos: np.ndarray  # (W,)
    ner: np.ndarray  # (W,)


def encode(sentences: list[Sentence], wp: WordPiece) -> list[Example]:
    u, n = {t: i for i, t in enumerate(UPOS)}, {t: i for i, t in enumerate(NER)}
    return [
        Example(
            featurize(s.words, wp),
            np.array([u[t] for t in s.upos]),
            np.array([n[t] for t in s.ner]),
        )
        for s in sentences
    ]


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
    arrays = pad_batch([e.features for e in batch])
    W = max(len(e.upos) for e in batch)
    starts = np.zeros((len(batch), W), dtype=np.int64)
    mask = np.zeros((len(batch), W), dtype=bool)
    upos = np.zeros((len(batch), W), dtype=np.int64)
    ner = np.zeros((len(batch), W), dtype=np.int64)
    for i, e in enumerate(batch):
        w = len(e.upos)
        starts[i, :w], mask[i, :w], upos[i, :w], ner[i, :w] = (
            e.features.word_starts,
            True,
            e.upos,
            e.ner,
        )
    out = {k: torch.from_numpy(v) for k, v in arrays.items()}
    out.update(
        starts=torch.from_numpy(starts),
        mask=torch.from_numpy(mask),
        upos=torch.from_numpy(upos),
        ner=torch.from_numpy(ner),
    )
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


def loss_fn(model: BiGRUModel, b: dict[str, Tensor]) -> Tensor:
    upos, ner = model.tag(b["input_ids"], b["case_ids"], b["lengths"])
    upos, ner = word_rows(upos, b["starts"]), word_rows(ner, b["starts"])
    ce = nn.functional.cross_entropy(upos[b["mask"]], b["upos"][b["mask"]])
    return ce + model.crf.nll(ner, b["ner"], b["mask"])


@torch.inference_mode()
def predict(model: BiGRUModel, examples: list[Example], size: int = 64):
    """Word-level UPOS and NER labels, decoded the way the service decodes them."""
    model.eval()
    crf = CRFDecoder.build(
        NER, model.crf.trans.numpy(), model.crf.start.numpy(), model.crf.end.numpy()
    )
    upos_out, ner_out = [], []
    for j in range(0, len(examples), size):
        chunk = examples[j : j + size]
        b = collate(chunk)
        upos, ner = model.tag(b["input_ids"], b["case_ids"], b["lengths"])
        upos, ner = word_rows(upos, b["starts"]).numpy(), word_rows(ner, b["starts"]).numpy()
        for i, e in enumerate(chunk):
            w = len(e.upos)
            upos_out.append([UPOS[k] for k in upos[i, :w].argmax(-1)])
            ner_out.append([NER[k] for k in crf.viterbi(ner[i, :w].astype(np.float64))])
    model.train()
    return upos_out, ner_out


def score(model: BiGRUModel, examples: list[Example]) -> dict[str, float]:
    upos, ner = predict(model, examples)
    gold_u = [[UPOS[k] for k in e.upos] for e in examples]
    gold_n = [[NER[k] for k in e.ner] for e in examples]
    return tagging_scores(gold_u, upos, gold_n, ner)


def plot_curves(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].plot(ep, [h["train_loss"] for h in history])
    axes[0].set_title("train loss")
    axes[1].plot(ep, [h["upos_acc"] for h in history])
    axes[1].axhline(95.5, ls="--", c="gray")
    axes[1].set_title("dev UPOS accuracy (%)")
    axes[2].plot(ep, [h["ner_f1"] for h in history])
    axes[2].axhline(72, ls="--", c="gray")
    axes[2].set_title("dev NER entity F1")
    for ax in axes:
        ax.set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def train(data_dir: Path, out: Path, cfg: TrainConfig, mcfg: ModelConfig) -> dict:
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    torch.set_num_threads(cfg.threads)
    out.mkdir(parents=True, exist_ok=True)
    wp = WordPiece.from_file(teacher.vocab_file())
    train_s, train_rep = load_tagging(data_dir, "train")
    train_s = train_s[: cfg.limit]
    dev_s, dev_rep = load_tagging(data_dir, "dev")
    print(
        f"train {train_rep.joined} sentences (skipped {len(train_rep.skipped)}), "
        f"dev {dev_rep.joined} (skipped {len(dev_rep.skipped)})",
        flush=True,
    )
    train_x, dev_x = encode(train_s, wp), encode(dev_s, wp)
    if cfg.init:
        model, _ = load_checkpoint(Path(cfg.init))
        mcfg = model.cfg
        model.train()
    else:
        mcfg.lex_rows, lex_index = lexicon(train_x, mcfg.vocab_size, cfg.lex_min_count)
        model = BiGRUModel(mcfg, teacher.input_table())
        model.lex_index.copy_(lex_index)
    aux = None
    if cfg.aux_sentences:
        from training.context import ContextDistiller
        from training.distill import DistillConfig, build_corpus, student_features

        corpus = build_corpus(data_dir, DistillConfig(seed=cfg.seed, corpus_size=cfg.aux_sentences))
        aux = ContextDistiller(
            student_features(corpus[: cfg.aux_sentences], wp),
            2 * mcfg.hidden,
            cfg.batch_size,
            cfg.seed,
        )
        aux_batches = aux.batches()
        print(f"contextual distillation on {len(aux.feats)} unlabeled sentences", flush=True)
    if cfg.silver:
        from training.silver import read_silver, silver_batches, silver_loss

        silver = silver_batches(read_silver(Path(cfg.silver)), cfg.silver_batch_size, rng)
        print(f"silver tags from {cfg.silver}", flush=True)
    params = [p for p in model.parameters() if p.requires_grad]
    if aux is not None:
        params += list(aux.head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema)) if cfg.ema else None
    kept = ema.module if ema is not None else model  # what is scored and saved
    if cfg.init:
        sched = torch.optim.lr_scheduler.LinearLR(opt, 1.0, 0.1, total_iters=cfg.epochs)
    else:
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, "max", factor=0.5, patience=2)
    history: list[dict] = []
    best, best_epoch, t0 = -1.0, 0, time.time()
    for epoch in range(1, cfg.epochs + 1):
        chunks = batches(train_x, cfg.batch_size, rng)
        total = aux_total = silver_total = 0.0
        for k, chunk in enumerate(chunks, 1):
            loss = loss_fn(model, collate(chunk))
            total += loss.item()
            if aux is not None:
                aux_loss = aux.loss(model, next(aux_batches))
                aux_total += aux_loss.item()
                loss = loss + cfg.aux_weight * aux_loss
            if cfg.silver:
                extra = silver_loss(model, next(silver), cfg.silver_ner_weight)
                silver_total += extra.item()
                loss = loss + extra
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            if ema is not None:
                ema.update_parameters(model)
            if k % 100 == 0:
                print(
                    f"  epoch {epoch} batch {k}/{len(chunks)} loss {total / k:.3f} "
                    f"aux {aux_total / k:.3f} silver {silver_total / k:.3f}",
                    flush=True,
                )
        dev = score(kept, dev_x)
        select = selection(dev, cfg)
        if cfg.init:
            sched.step()
        else:
            sched.step(dev["upos_acc"] + dev["ner_f1"])
        history.append(
            {
                "epoch": epoch,
                "train_loss": total / len(chunks),
                "aux_loss": aux_total / len(chunks),
                "silver_loss": silver_total / len(chunks),
                **dev,
                "minutes": (time.time() - t0) / 60,
            }
        )
        improved = select > best
        if improved:
            best, best_epoch = select, epoch
            save_checkpoint(
                kept,
                out / "tagger.pt",
                {
                    "dev": dev,
                    "epoch": epoch,
                    "train": asdict(cfg),
                    "skipped": {"train": train_rep.skipped, "dev": dev_rep.skipped},
                },
            )
        save_checkpoint(kept, out / "last.pt", {"dev": dev, "epoch": epoch, "train": asdict(cfg)})
        print(
            f"epoch {epoch}: loss {total / len(chunks):.3f} dev UPOS {dev['upos_acc']:.2f} "
            f"NER F1 {dev['ner_f1']:.2f} {'*' if improved else ''} "
            f"({(time.time() - t0) / 60:.1f} min)",
            flush=True,
        )
        (out / "history.json").write_text(json.dumps(history, indent=1))
        plot_curves(history, out / "curves.png")
        if epoch - best_epoch >= cfg.patience or (time.time() - t0) / 60 > cfg.max_minutes:
            break
    return history[best_epoch - 1]


def selection(dev: dict[str, float], cfg: TrainConfig) -> float:
    """The figure the best dev epoch maximises."""
    if cfg.select == "upos":
        return dev["upos_acc"] if dev["ner_f1"] >= cfg.ner_floor else -1.0
    return dev["upos_acc"] + dev["ner_f1"]


def save_checkpoint(model: BiGRUModel, path: Path, meta: dict) -> None:
    state = {k: v for k, v in model.state_dict().items() if k != "table"}  # table: from the teacher
    torch.save(
        {
            "config": model.cfg.to_dict(),
            "state": state,
            "meta": meta,
            "labels": {"upos": UPOS, "ner": NER},
        },
        path,
    )


SENTENCE_META = ("distill", "corpus_size", "sts_finetune", "stsb_dev")


def load_checkpoint(path: Path, sentence: Path | None = None) -> tuple[BiGRUModel, dict]:
    """A model from a tagger checkpoint, with the sentence encoder of another one if given."""
    ckpt = torch.load(path, weights_only=False)
    config, state = ckpt["config"], ckpt["state"]
    if sentence is not None:
        other = torch.load(sentence, weights_only=False)
        # the sentence encoder's shape comes with it (older checkpoints: the defaults)
        sent_fields = [k for k in ModelConfig.__dataclass_fields__ if k.startswith("sent_")]
        defaults = ModelConfig()
        shape = {k: other["config"].get(k, getattr(defaults, k)) for k in sent_fields}
        config = {**config, **shape}
        ckpt = {**ckpt, "config": config}
        state = {k: v for k, v in state.items() if not k.startswith("sent")}
        state |= {k: v for k, v in other["state"].items() if k.startswith("sent")}
        # how the sentence encoder was made comes with it; the rest is the tagger's
        kept = {k: v for k, v in ckpt["meta"].items() if k not in SENTENCE_META}
        ckpt["meta"] = kept | {k: v for k, v in other["meta"].items() if k in SENTENCE_META}
    model = BiGRUModel(ModelConfig(**config), teacher.input_table())
    missing, unexpected = model.load_state_dict(state, strict=False)
    if set(missing) != {"table"} or unexpected:  # the table comes from the teacher, not the file
        raise ValueError(f"{path}: missing {missing}, unexpected {unexpected}")
    return model.eval(), ckpt
