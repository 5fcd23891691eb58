"""XPOS, UFeats and lemma heads on a morphology layer over a finished tagger, which stays as is.

The tagger's encoder is frozen, so UPOS and NER answer exactly as they do without the layer.
Its states know tags, not inflection (a linear probe of them gets XPOS right only 87% of the
time on EWT dev), so a narrow BiGRU reads a projection of them and of the tagger's own inputs
(table rows, case and lexicon rows), and each new head scores a word by its first and last
pieces' logits summed: the last piece holds the inflection (`walk ##ed`). Lemmas are edit
scripts (app.model.lemma): a head classifies the script, and the service applies it to the form.
Labels seen fewer than `min_count` times in train get no class (their words have no loss and
are scored as wrong). The frozen tagger runs once; the layer trains on its cached outputs."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from app.model.featurize import WordPiece
from app.model.lemma import apply_script, edit_script
from training import teacher
from training.data import Sentence, read_conllu
from training.frozen import frozen_states
from training.loop import Budget, Trainer, run
from training.model import BiGRUModel, ModelConfig, PackedBiGRU

MORPH_HEADS = ("xpos", "feats", "lemma")
DECODERS = {"xpos": "softmax", "feats": "softmax", "lemma": "lemma"}
IGNORE = -100


@dataclass
class MorphConfig:
    hidden: int = 64  # the morphology BiGRU, per direction
    input: int = 64  # its input: a projection of the tagger's states and inputs (0: those)
    dropout: float = 0.2
    min_count: int = 3  # a label needs this many train words to get a class
    epochs: int = 20
    batch: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-5
    seed: int = 0


def word_labels(s: Sentence, head: str) -> list[str]:
    if head == "lemma":
        return [edit_script(w, lem) for w, lem in zip(s.words, s.lemmas, strict=True)]
    return getattr(s, head)


def label_sets(train: list[Sentence], min_count: int) -> dict[str, list[str]]:
    """Each head's classes, most frequent first."""
    out = {}
    for head in MORPH_HEADS:
        counts = Counter(t for s in train for t in word_labels(s, head))
        out[head] = [t for t, n in counts.most_common() if n >= min_count]
    return out


def sentence_targets(s: Sentence, labels: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """(W,) class ids per head; IGNORE for a rare label."""
    out = {}
    for head in MORPH_HEADS:
        index = {t: i for i, t in enumerate(labels[head])}
        out[head] = np.array([index.get(t, IGNORE) for t in word_labels(s, head)], dtype=np.int64)
    return out


@dataclass
class Cached:
    """One sentence as the morphology layer reads it: the frozen tagger's states and inputs."""

    states: np.ndarray  # (T, 2H + C) float32
    word_starts: np.ndarray  # (W,) int64
    targets: dict[str, np.ndarray]  # head -> (W,) class ids


def cache(
    tagger: BiGRUModel, sentences: list[Sentence], wp: WordPiece, labels: dict[str, list[str]]
) -> list[Cached]:
    frozen = frozen_states(tagger, [s.words for s in sentences], wp)
    return [
        Cached(f.states, f.word_starts, sentence_targets(s, labels))
        for f, s in zip(frozen, sentences, strict=True)
    ]


class MorphLayer(nn.Module):
    """What training adds to the tagger: the BiGRU and one linear head per label set."""

    def __init__(self, width: int, cfg: MorphConfig, sizes: dict[str, int]):
        super().__init__()
        self.drop = nn.Dropout(cfg.dropout)
        self.proj = nn.Linear(width, cfg.input) if cfg.input else None
        self.gru = PackedBiGRU(cfg.input or width, cfg.hidden)
        self.heads = nn.ModuleDict({h: nn.Linear(2 * cfg.hidden, n) for h, n in sizes.items()})

    def forward(self, states: Tensor, lengths: Tensor) -> dict[str, Tensor]:
        x = self.drop(states)
        m = self.drop(self.gru(x if self.proj is None else self.proj(x), lengths))
        return {h: head(m) for h, head in self.heads.items()}


def _collate(batch: list[Cached]) -> dict[str, Tensor]:
    T = max(len(c.states) for c in batch)
    W = max(len(c.word_starts) for c in batch)
    states = np.zeros((len(batch), T, batch[0].states.shape[1]), dtype=np.float32)
    starts = np.zeros((len(batch), W), dtype=np.int64)
    ends = np.zeros((len(batch), W), dtype=np.int64)  # each word's last piece
    out = {h: np.full((len(batch), W), IGNORE, dtype=np.int64) for h in MORPH_HEADS}
    for i, c in enumerate(batch):
        states[i, : len(c.states)] = c.states
        starts[i, : len(c.word_starts)] = c.word_starts
        ends[i, : len(c.word_starts)] = np.append(c.word_starts[1:], len(c.states)) - 1
        for h in MORPH_HEADS:
            out[h][i, : len(c.word_starts)] = c.targets[h]
    t = {h: torch.from_numpy(v) for h, v in out.items()}
    t["states"], t["starts"] = torch.from_numpy(states), torch.from_numpy(starts)
    t["ends"] = torch.from_numpy(ends)
    t["lengths"] = torch.tensor([len(c.states) for c in batch])
    return t


def _word_logits(layer: MorphLayer, b: dict[str, Tensor]) -> dict[str, Tensor]:
    """Each word's logits: its first and last pieces' summed, as the decoder reads a head whose
    `pieces` are "first+last"."""
    logits = layer(b["states"], b["lengths"])

    def at(pieces: Tensor, x: Tensor) -> Tensor:
        return x.gather(1, pieces.unsqueeze(-1).expand(-1, -1, x.shape[-1]))

    return {h: at(b["starts"], x) + at(b["ends"], x) for h, x in logits.items()}


def fit(train: list[Cached], dev: list[Cached], dev_s: list[Sentence], labels, cfg: MorphConfig):
    """Train the layer with the loop; the epoch with the best dev sum of the three accuracies is
    kept. The layer and the history's rows back."""
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    layer = MorphLayer(train[0].states.shape[1], cfg, {h: len(labels[h]) for h in MORPH_HEADS})
    opt = torch.optim.AdamW(layer.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * ((len(train) + cfg.batch - 1) // cfg.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=steps + 1)
    best: dict[str, Tensor] = {}

    def batches(epoch: int) -> list[list[Cached]]:
        order = sorted(range(len(train)), key=lambda i: len(train[i].states) + rng.random() * 3)
        chunks = [order[j : j + cfg.batch] for j in range(0, len(order), cfg.batch)]
        rng.shuffle(chunks)
        return [[train[i] for i in chunk] for chunk in chunks]

    def step(batch: list[Cached]) -> dict[str, float]:
        b = _collate(batch)
        words = _word_logits(layer, b)
        loss = sum(
            nn.functional.cross_entropy(words[h].flatten(0, 1), b[h].flatten(), ignore_index=IGNORE)
            for h in MORPH_HEADS
        )
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(layer.parameters(), 5.0)
        opt.step()
        sched.step()
        return {"loss": loss.item()}

    def evaluate() -> dict[str, float]:
        scores = morph_scores(dev_s, labels, predict(layer, dev))
        layer.train()
        return scores

    def keep(epoch: int, dev: dict[str, float]) -> None:
        best.update({k: v.clone() for k, v in layer.state_dict().items()})

    trainer = Trainer(
        batches=batches,
        step=step,
        evaluate=evaluate,
        select=lambda scores: sum(scores.values()),
        keep=keep,
    )
    history = run(trainer, Budget(cfg.epochs))
    layer.load_state_dict(best)
    return layer.eval(), history.rows


@torch.inference_mode()
def predict(layer: MorphLayer, cached: list[Cached]) -> dict[str, list[np.ndarray]]:
    layer.eval()
    out: dict[str, list[np.ndarray]] = {h: [] for h in MORPH_HEADS}
    for j in range(0, len(cached), 64):
        batch = cached[j : j + 64]
        words = _word_logits(layer, _collate(batch))
        for h in MORPH_HEADS:
            ids = words[h].argmax(-1).numpy()
            out[h] += [ids[i, : len(c.word_starts)] for i, c in enumerate(batch)]
    return out


def morph_scores(
    sentences: list[Sentence],
    labels: dict[str, list[str]],
    pred: dict[str, list[np.ndarray]],
) -> dict[str, float]:
    """Accuracy (%) per head over every word; the lemma head is scored on the lemma its script
    makes, against the gold lemma (as the CoNLL 2018 scorer's LEMMA)."""
    right = dict.fromkeys(MORPH_HEADS, 0)
    n = 0
    for s, *ids in zip(sentences, *(pred[h] for h in MORPH_HEADS), strict=True):
        got = dict(zip(MORPH_HEADS, ids, strict=True))
        n += len(s.words)
        right["xpos"] += sum(
            labels["xpos"][i] == g for i, g in zip(got["xpos"], s.xpos, strict=True)
        )
        right["feats"] += sum(
            labels["feats"][i] == g for i, g in zip(got["feats"], s.feats, strict=True)
        )
        made = [
            apply_script(w, labels["lemma"][i]) for w, i in zip(s.words, got["lemma"], strict=True)
        ]
        right["lemma"] += sum(m == g for m, g in zip(made, s.lemmas, strict=True))
    return {h: 100 * right[h] / max(n, 1) for h in MORPH_HEADS}


def with_morph(
    tagger: BiGRUModel, layer: MorphLayer, cfg: MorphConfig, labels: dict[str, list[str]]
) -> BiGRUModel:
    """The tagger with the morphology layer and its heads, as one model to export; a tagger that
    has a morphology layer already gets this one in its place."""
    old = {h["name"] for h in tagger.cfg.head_list() if h.get("layer") == "morph"}
    heads = [
        *(h for h in tagger.cfg.head_list() if h["name"] not in old),
        *(
            {
                "name": h,
                "size": len(labels[h]),
                "decoder": DECODERS[h],
                "layer": "morph",
                "pieces": "first+last",
            }
            for h in MORPH_HEADS
        ),
    ]
    sizes = {"heads": heads, "morph_hidden": cfg.hidden, "morph_input": cfg.input}
    model_cfg = ModelConfig(**{**tagger.cfg.to_dict(), **sizes})
    model = BiGRUModel(model_cfg, teacher.input_table())
    replaced = ("table", "morph", "morph_in", *old)
    state = {k: v for k, v in tagger.state_dict().items() if k.split(".")[0] not in replaced}
    state |= {f"morph.{k}": v for k, v in layer.gru.state_dict().items()}
    if layer.proj is not None:
        state |= {f"morph_in.{k}": v for k, v in layer.proj.state_dict().items()}
    for h in MORPH_HEADS:
        state |= {f"{h}.{k}": v for k, v in layer.heads[h].state_dict().items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if set(missing) != {"table"} or unexpected:
        raise ValueError(f"missing {missing}, unexpected {unexpected}")
    return model.eval()


def config_dict(cfg: MorphConfig) -> dict:
    return asdict(cfg)


def train_morph(model_dir: Path, data_dir: Path, cfg: MorphConfig) -> tuple[BiGRUModel, dict]:
    """The shipped tagger in `model_dir` with a morphology layer trained on EWT train, the
    epoch best on EWT dev kept; the model and its facts (labels, figures per epoch)."""
    from training.recover import recover

    wp = WordPiece.from_file(model_dir / "vocab.txt")
    ewt = data_dir / "ud-ewt"
    train = read_conllu(ewt / "en_ewt-ud-train.conllu")
    dev = read_conllu(ewt / "en_ewt-ud-dev.conllu")
    labels = label_sets(train, cfg.min_count)
    tagger, card = recover(model_dir)
    print("running the frozen tagger over EWT train and dev ...", flush=True)
    layer, history = fit(
        cache(tagger, train, wp, labels), cache(tagger, dev, wp, labels), dev, labels, cfg
    )
    model = with_morph(tagger, layer, cfg, labels)
    facts = {"config": asdict(cfg), "history": history, "recovered_from": card["sha256"]}
    return model, {"labels": labels, "facts": facts, "card": card}
