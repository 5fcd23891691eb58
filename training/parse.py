"""A dependency parsing layer over a finished tagger, which stays as is.

As the morphology layer: the tagger is frozen, so every other head answers exactly what it
answered, and the layer trains on the tagger's cached states and inputs. A BiGRU reads a
projection of them; each word is the sum of its first and last pieces' features, as the
morphology heads read a word.

Scoring is Dozat & Manning's (2017) biaffine arc scorer and a relation classifier
(training.model.ParseLayer). The encoder stays frozen: the other heads' answers cannot change,
and the layer trains on the tagger's cached states in minutes per epoch on two cores.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from app.model.featurize import WordPiece
from app.model.spec import read_heads
from app.model.tree import tree
from training import teacher
from training.checkpoint import load_checkpoint, save_checkpoint
from training.data import Sentence, read_conllu
from training.frozen import Frozen, frozen_states
from training.loop import Budget, History, Trainer, run
from training.model import BiGRUModel, ModelConfig, ParseLayer, length_mask

IGNORE = -100


@dataclass
class ParseConfig:
    input: int = 256  # the BiGRU's input: a projection of the tagger's states and inputs
    hidden: int = 192  # per direction
    layers: int = 2
    arc: int = 256  # arc features
    rel: int = 128  # relation features
    dropout: float = 0.33
    epochs: int = 30
    batch: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-5
    max_minutes: float = 80.0
    patience: int | None = None  # epochs without a better dev LAS before stopping
    seed: int = 0


def relation_labels(train: list[Sentence]) -> list[str]:
    """Every relation of train, most frequent first."""
    return [r for r, _ in Counter(r for s in train for r in s.deprels).most_common()]


def _words(x: Tensor, starts: Tensor, ends: Tensor) -> Tensor:
    def at(pieces: Tensor) -> Tensor:
        return x.gather(1, pieces.unsqueeze(-1).expand(-1, -1, x.shape[-1]))

    return at(starts) + at(ends)


def word_features(layer: ParseLayer, b: dict[str, Tensor]) -> dict[str, Tensor]:
    per_piece = layer.pieces(b["states"], b["lengths"])
    out = {}
    for k, x in per_piece.items():
        x3 = x.unsqueeze(-1) if x.dim() == 2 else x
        w = _words(x3, b["starts"], b["ends"])
        out[k] = w.squeeze(-1) if x.dim() == 2 else w
    return out


@dataclass
class Item:
    """One sentence as the parsing layer reads it."""

    frozen: Frozen
    heads: np.ndarray  # (W,) 0: the root
    rels: np.ndarray  # (W,) relation ids, IGNORE if unknown


def items(frozen: list[Frozen], sentences: list[Sentence], labels: list[str]) -> list[Item]:
    index = {r: i for i, r in enumerate(labels)}
    return [
        Item(
            f,
            np.array(s.heads, dtype=np.int64),
            np.array([index.get(r, IGNORE) for r in s.deprels], dtype=np.int64),
        )
        for f, s in zip(frozen, sentences, strict=True)
    ]


def collate(batch: list[Item]) -> dict[str, Tensor]:
    T = max(len(c.frozen.states) for c in batch)
    W = max(len(c.heads) for c in batch)
    states = np.zeros((len(batch), T, batch[0].frozen.states.shape[1]), dtype=np.float32)
    starts = np.zeros((len(batch), W), dtype=np.int64)
    ends = np.zeros((len(batch), W), dtype=np.int64)
    heads = np.full((len(batch), W), IGNORE, dtype=np.int64)
    rels = np.full((len(batch), W), IGNORE, dtype=np.int64)
    for i, c in enumerate(batch):
        n, w = len(c.frozen.states), len(c.heads)
        states[i, :n] = c.frozen.states
        starts[i, :w] = c.frozen.word_starts
        ends[i, :w] = np.append(c.frozen.word_starts[1:], n) - 1
        heads[i, :w], rels[i, :w] = c.heads, c.rels
    t = {"states": states, "starts": starts, "ends": ends, "heads": heads, "rels": rels}
    out = {k: torch.from_numpy(v) for k, v in t.items()}
    out["lengths"] = torch.tensor([len(c.frozen.states) for c in batch])
    out["words"] = torch.tensor([len(c.heads) for c in batch])
    return out


def loss(layer: ParseLayer, b: dict[str, Tensor]) -> Tensor:
    w = word_features(layer, b)
    arcs = layer.arcs(w)  # (B, W, W + 1)
    W = arcs.shape[1]
    real_heads = length_mask(b["words"] + 1, W + 1)  # the root and the sentence's words
    arcs = arcs.masked_fill(~real_heads[:, None, :], -1e9)
    rels = layer.rels(w, b["heads"])
    ce = nn.functional.cross_entropy
    arc_loss = ce(arcs.flatten(0, 1), b["heads"].flatten(), ignore_index=IGNORE)
    return arc_loss + ce(rels.flatten(0, 1), b["rels"].flatten(), ignore_index=IGNORE)


@torch.inference_mode()
def predict(layer: ParseLayer, data: list[Item]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(heads, relation ids) per sentence: a well-formed tree, as the service decodes it."""
    layer.eval()
    out = []
    for j in range(0, len(data), 64):
        batch = data[j : j + 64]
        b = collate(batch)
        w = word_features(layer, b)
        arcs = torch.log_softmax(layer.arcs(w).masked_fill(
            ~length_mask(b["words"] + 1, b["starts"].shape[1] + 1)[:, None, :], -1e9), -1
        ).numpy()  # fmt: skip
        trees = []
        for i, c in enumerate(batch):
            n = len(c.heads)
            scores = np.zeros((n + 1, n + 1))
            scores[1:] = arcs[i, :n, : n + 1]
            trees.append(tree(scores)[1:])
        heads = torch.zeros(b["heads"].shape, dtype=torch.long)
        for i, t in enumerate(trees):
            heads[i, : len(t)] = torch.from_numpy(t)
        rels = layer.rels(w, heads).argmax(-1).numpy()
        out += [(t, rels[i, : len(t)]) for i, t in enumerate(trees)]
    layer.train()
    return out


def attachment(data: list[Item], pred: list[tuple[np.ndarray, np.ndarray]], labels: list[str]):
    """UAS and LAS (%), the relation compared on its universal part as the CoNLL 2018 scorer."""
    universal = np.array([r.split(":")[0] for r in labels])
    words = uas = las = 0
    for c, (heads, rels) in zip(data, pred, strict=True):
        gold_rel = np.where(c.rels >= 0, c.rels, 0)
        right_head = heads == c.heads
        right_rel = (universal[rels] == universal[gold_rel]) & (c.rels >= 0)
        words += len(heads)
        uas += int(right_head.sum())
        las += int((right_head & right_rel).sum())
    return {"uas": 100 * uas / max(words, 1), "las": 100 * las / max(words, 1)}


def fit(train: list[Item], dev: list[Item], labels: list[str], cfg: ParseConfig):
    """Train the layer with the loop; the epoch with the best dev LAS is kept."""
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    width = train[0].frozen.states.shape[1]
    layer = ParseLayer(width, cfg.input, cfg.hidden, cfg.layers, cfg.arc, cfg.rel, cfg.dropout,
                       len(labels))  # fmt: skip
    opt = torch.optim.AdamW(layer.parameters(), lr=cfg.lr, betas=(0.9, 0.9),
                            weight_decay=cfg.weight_decay)  # fmt: skip
    per_epoch = (len(train) + cfg.batch - 1) // cfg.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.epochs * per_epoch + 1)
    best: dict[str, Tensor] = {}

    def batches(epoch: int) -> list[list[Item]]:
        order = sorted(range(len(train)), key=lambda i: len(train[i].heads) + rng.random() * 3)
        starts = range(0, len(order), cfg.batch)
        chunks = [[train[i] for i in order[j : j + cfg.batch]] for j in starts]
        rng.shuffle(chunks)
        return chunks

    def step(batch: list[Item]) -> dict[str, float]:
        value = loss(layer, collate(batch))
        opt.zero_grad()
        value.backward()
        nn.utils.clip_grad_norm_(layer.parameters(), 5.0)
        opt.step()
        sched.step()
        return {"loss": value.item()}

    def keep(epoch: int, row: dict) -> None:
        best.update({k: v.clone() for k, v in layer.state_dict().items()})

    trainer = Trainer(
        batches=batches,
        step=step,
        evaluate=lambda: attachment(dev, predict(layer, dev), labels),
        select=lambda scores: scores["las"],
        keep=keep,
    )
    history: History = run(trainer, Budget(cfg.epochs, cfg.max_minutes, cfg.patience))
    layer.load_state_dict(best)
    return layer.eval(), history


def train_parse(model_dir: Path, data_dir: Path, cfg: ParseConfig, limit: int | None = None):
    """The shipped model in `model_dir` with a parsing layer trained on EWT train, the epoch
    best on EWT dev kept: the model, every head's labels (the relations as `deprel`), and the
    run's facts for its card."""
    from training.recover import recover

    ewt = data_dir / "ud-ewt"
    train = read_conllu(ewt / "en_ewt-ud-train.conllu")[:limit]
    dev = read_conllu(ewt / "en_ewt-ud-dev.conllu")[: limit and limit // 4]
    tagger, card = recover(model_dir)
    model, relations, facts = parse_layer(tagger, train, dev, cfg)
    labels = {**shipped_labels(model_dir), "deprel": relations}
    facts["recovered_from"] = card["sha256"]
    return model, labels, {"facts": facts, "card": card}


def parse_layer(tagger: BiGRUModel, train: list[Sentence], dev: list[Sentence], cfg: ParseConfig):
    """`tagger` with a parsing layer trained on `train`'s trees over its frozen states, the
    epoch best on `dev` kept: the model, its relation labels, and the run's facts."""
    wp = WordPiece.from_file(teacher.vocab_file())
    relations = relation_labels(train)
    print("running the frozen tagger over the train and dev sentences ...", flush=True)
    frozen = {name: frozen_states(tagger, [s.words for s in split], wp)
              for name, split in (("train", train), ("dev", dev))}  # fmt: skip
    layer, history = fit(
        items(frozen["train"], train, relations), items(frozen["dev"], dev, relations),
        relations, cfg,
    )  # fmt: skip
    facts = {"config": asdict(cfg), "history": history.rows, "best_epoch": history.best_epoch}
    return with_parser(tagger, layer, cfg), relations, facts


def add_parser(checkpoint: Path, train: list[Sentence], dev: list[Sentence], cfg: ParseConfig):
    """A parsing layer trained into a tagger checkpoint (`bigru train` on files with trees)."""
    tagger, ckpt = load_checkpoint(checkpoint)
    model, relations, facts = parse_layer(tagger, train, dev, cfg)
    save_checkpoint(model, checkpoint, {**ckpt["meta"], "parse": facts},
                    {**ckpt["labels"], "deprel": relations})  # fmt: skip
    return facts["history"][facts["best_epoch"] - 1]


def with_parser(tagger: BiGRUModel, layer: ParseLayer, cfg: ParseConfig) -> BiGRUModel:
    """The tagger with the parsing layer, as one model to export; a tagger that has a parsing
    layer already gets this one in its place."""
    sizes = {
        "parse_hidden": cfg.hidden,
        "parse_input": cfg.input,
        "parse_layers": cfg.layers,
        "parse_arc": cfg.arc,
        "parse_rel": cfg.rel,
        "n_rels": layer.rel_out.out_features,
    }
    model = BiGRUModel(ModelConfig(**{**tagger.cfg.to_dict(), **sizes}), teacher.input_table())
    state = {
        k: v for k, v in tagger.state_dict().items() if k.split(".")[0] not in ("table", "parser")
    }
    state |= {f"parser.{k}": v for k, v in layer.state_dict().items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if set(missing) != {"table"} or unexpected:
        raise ValueError(f"missing {missing}, unexpected {unexpected}")
    return model.eval()


def shipped_labels(model_dir: Path) -> dict[str, list[str]]:
    """Each head's labels in a model folder's model.json."""
    spec = json.loads((model_dir / "model.json").read_text())
    return {h.name: h.labels for h in read_heads(spec)}
