"""Train the tagger encoder: a BiGRU with one output head per label set.

Two sources: EWT (UPOS softmax + UNER NER CRF, joined from `--data`), or a user's labelled
files (training/conll.py), whose label columns give the heads. Seeded; length-bucketed batches;
the epochs run in training/loop.py, which keeps the best dev checkpoint (tagger.pt) and writes
history.json and curves.png beside it; the last epoch's checkpoint is last.pt, and a model
card (README.md) describes the run.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from app.model.crf import CRFDecoder
from app.model.featurize import WordPiece, length_batches
from training import teacher
from training.card import run_card
from training.checkpoint import load_checkpoint, save_checkpoint
from training.context import ContextDistiller
from training.corpus import Corpus, ewt_corpus
from training.distill import DistillConfig, build_corpus, student_features
from training.examples import Example, batches, collate, lexicon, word_rows
from training.loop import Budget, Trainer, run
from training.model import BiGRUModel, ModelConfig
from training.scores import head_scores, headline, main_score
from training.silver import read_silver, silver_batches, silver_loss

NEVER = float("-inf")  # the selection figure of an epoch that cannot be the best


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
    # best dev epoch by the sum of head scores ("sum"), by UPOS ("upos") among epochs whose NER
    # F1 is at least `ner_floor`, or by the sum among epochs at both floors ("floors")
    select: str = "sum"
    ner_floor: float = 72.0
    upos_floor: float = 0.0
    ema: float = 0.0  # >0: evaluate and keep an exponential moving average of the weights
    lex_min_count: int = 2  # pieces seen this often in train get a trainable lexical row
    limit: int | None = None  # first N train sentences only (smoke runs)


def loss_fn(model: BiGRUModel, b: dict[str, Tensor]) -> Tensor:
    """Cross-entropy of each softmax head plus the CRF's NLL of the span head."""
    m = b["mask"]
    logits = model.tag(b["input_ids"], b["case_ids"], b["lengths"])
    loss = torch.zeros(())
    for h, x in zip(model.cfg.head_list(), logits, strict=True):
        rows = word_rows(x, b["starts"])
        if h["decoder"] == "crf":
            loss = loss + model.crf.nll(rows, b[h["name"]], m)
        else:
            loss = loss + nn.functional.cross_entropy(rows[m], b[h["name"]][m])
    return loss


@torch.inference_mode()
def predict(
    model: BiGRUModel, examples: list[Example], labels: dict[str, list[str]], size: int = 64
) -> dict[str, list[list[str]]]:
    """Word labels of each head, decoded the way the service decodes them."""
    model.eval()
    heads = model.cfg.head_list()
    decoders = {}
    for h in heads:
        if h["decoder"] == "crf":
            c = model.crf
            decoders[h["name"]] = CRFDecoder.build(
                labels[h["name"]], c.trans.numpy(), c.start.numpy(), c.end.numpy()
            )
    out: dict[str, list] = {h["name"]: [None] * len(examples) for h in heads}
    for idx, feeds in length_batches([e.features for e in examples], size):
        b = {k: torch.from_numpy(v) for k, v in feeds.items()}
        logits = model.tag(b["input_ids"], b["case_ids"], b["lengths"])
        for h, x in zip(heads, logits, strict=True):
            names, crf = labels[h["name"]], decoders.get(h["name"])
            for r, i in enumerate(idx):
                rows = x[r, examples[i].features.word_starts].numpy().astype(np.float64)
                ids = crf.viterbi(rows) if crf is not None else rows.argmax(-1)
                out[h["name"]][i] = [names[k] for k in ids]
    model.train()
    return out


def score(model: BiGRUModel, corpus: Corpus, examples: list[Example]) -> dict[str, float]:
    pred = predict(model, examples, corpus.labels)
    gold = {
        name: [[names[k] if k >= 0 else "" for k in e.labels[name]] for e in examples]
        for name, names in corpus.labels.items()
    }
    return head_scores(corpus.decoders, gold, pred)


def train(data_dir: Path, out: Path, cfg: TrainConfig, mcfg: ModelConfig) -> dict:
    """The EWT tagger (UPOS + NER) from `data_dir`."""
    wp = WordPiece.from_file(teacher.vocab_file())
    corpus = ewt_corpus(data_dir, wp, cfg.limit)
    return fit(corpus, new_model(corpus, cfg, mcfg), out, cfg, data_dir)


def new_model(corpus: Corpus, cfg: TrainConfig, mcfg: ModelConfig) -> BiGRUModel:
    """The model to train: `cfg.init`'s, or a new one with the corpus's heads (seeded)."""
    torch.manual_seed(cfg.seed)
    if cfg.init:
        model, _ = load_checkpoint(Path(cfg.init))
        return model.train()
    mcfg.heads = corpus.heads
    mcfg.lex_rows, lex_index = lexicon(corpus.train, mcfg.vocab_size, cfg.lex_min_count)
    model = BiGRUModel(mcfg, teacher.input_table())
    model.lex_index.copy_(lex_index)
    return model


def _extra_losses(model: BiGRUModel, cfg: TrainConfig, data_dir: Path | None, rng: random.Random):
    """The optional auxiliary losses of the EWT recipe, as (name, batch -> loss, params)."""
    extras = []
    if cfg.aux_sentences:
        assert data_dir is not None, "contextual distillation reads the corpus under --data"
        wp = WordPiece.from_file(teacher.vocab_file())
        corpus = build_corpus(data_dir, DistillConfig(seed=cfg.seed, corpus_size=cfg.aux_sentences))
        aux = ContextDistiller(
            student_features(corpus[: cfg.aux_sentences], wp), 2 * model.cfg.hidden,
            cfg.batch_size, cfg.seed,
        )  # fmt: skip
        aux_batches = aux.batches()
        print(f"contextual distillation on {len(aux.feats)} unlabeled sentences", flush=True)
        extras.append(
            ("aux", lambda: cfg.aux_weight * aux.loss(model, next(aux_batches)), aux.head)
        )
    if cfg.silver:
        silver = silver_batches(read_silver(Path(cfg.silver)), cfg.silver_batch_size, rng)
        print(f"silver tags from {cfg.silver}", flush=True)
        extras.append(
            ("silver", lambda: silver_loss(model, next(silver), cfg.silver_ner_weight), None)
        )
    return extras


@dataclass
class _Step:
    """One optimiser step on a batch: the loss of every head and of each extra objective."""

    model: BiGRUModel
    opt: torch.optim.Optimizer
    params: list[nn.Parameter]
    ema: AveragedModel | None
    extras: list  # (name, () -> loss, module or None), from _extra_losses

    def __call__(self, chunk: list[Example]) -> dict[str, float]:
        loss = loss_fn(self.model, collate(chunk))
        losses = {"train_loss": loss.item()}
        for name, extra_loss, _ in self.extras:
            extra = extra_loss()
            losses[f"{name}_loss"] = extra.item()
            loss = loss + extra
        self.opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.params, 5.0)
        self.opt.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        return losses


def _scheduler(
    opt: torch.optim.Optimizer, cfg: TrainConfig, decoders: dict[str, str]
) -> Callable[[dict[str, float]], None]:
    """The learning rate's step after each dev evaluation: a fine-tune's decays linearly, a new
    model's halves when the dev figure stalls."""
    if cfg.init:
        linear = torch.optim.lr_scheduler.LinearLR(opt, 1.0, 0.1, total_iters=cfg.epochs)
        return lambda dev: linear.step()
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, "max", factor=0.5, patience=2)
    return lambda dev: plateau.step(main_score(decoders, dev))


def fit(
    corpus: Corpus, model: BiGRUModel, out: Path, cfg: TrainConfig, data_dir: Path | None = None
) -> dict:
    """Train on `corpus` with the loop, keep the best dev epoch in out/tagger.pt and the last in
    out/last.pt; the best epoch's history row back."""
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    torch.set_num_threads(cfg.threads)
    out.mkdir(parents=True, exist_ok=True)
    extras = _extra_losses(model, cfg, data_dir, rng)
    params = [p for p in model.parameters() if p.requires_grad]
    params += [p for _, _, m in extras if m is not None for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema)) if cfg.ema else None
    kept = ema.module if ema is not None else model  # what is scored and saved
    schedule = _scheduler(opt, cfg, corpus.decoders)

    def save(name: str, epoch: int, dev: dict[str, float]) -> None:
        meta = {"dev": dev, "epoch": epoch, "train": asdict(cfg), **corpus.facts}
        save_checkpoint(kept, out / name, meta, corpus.labels)

    def after_eval(epoch: int, dev: dict[str, float]) -> None:
        schedule(dev)
        save("last.pt", epoch, dev)

    trainer = Trainer(
        batches=lambda epoch: batches(corpus.train, cfg.batch_size, rng),
        step=_Step(model, opt, params, ema, extras),
        evaluate=lambda: score(kept, corpus, corpus.dev),
        select=lambda dev: selection(dev, corpus.decoders, cfg),
        keep=lambda epoch, dev: save("tagger.pt", epoch, dev),
        after_eval=after_eval,
        curves=("train_loss", *headline(corpus.decoders)),
    )
    best = run(trainer, Budget(cfg.epochs, cfg.max_minutes, cfg.patience), out).best
    (out / "README.md").write_text(run_card(corpus.labels, corpus.decoders, corpus.facts, best))
    return best


def selection(dev: dict[str, float], decoders: dict[str, str], cfg: TrainConfig) -> float:
    """The figure the best dev epoch maximises; an epoch below a floor is never the best."""
    if cfg.select == "upos":
        return dev["upos_acc"] if dev["ner_f1"] >= cfg.ner_floor else NEVER
    if cfg.select == "floors":
        held = dev["upos_acc"] >= cfg.upos_floor and dev["ner_f1"] >= cfg.ner_floor
        return main_score(decoders, dev) if held else NEVER
    return main_score(decoders, dev)
