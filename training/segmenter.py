"""The sentence segmenter: a small BiGRU over pieces that scores each word as a sentence start.

Inputs are the tagger's (WordPiece ids, case classes) plus the whitespace before each word
(app/model/segment.py). The frozen teacher table is projected to a narrow width, folded into a
lookup table at export, as the tagger's is. Trained on running text rebuilt from EWT train's
documents (`# newdoc`, `# newpar`, `# text`), with the noise real text has: paragraphs on new
lines or not, sentences on their own lines, line breaks inside sentences, lower-case starts, no
final period. Windows of random length teach it to read a long text in pieces, as the service
does (app.model.segment.windows)."""

from __future__ import annotations

import json
import random
import shutil
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from app.model.featurize import NUM_CASE_CLASSES, WordPiece
from app.model.segment import (
    MARGIN,
    NUM_SPACE_CLASSES,
    WINDOW,
    sentence_starts,
    text_features,
    windows,
    word_scores,
)
from app.model.spec import BOUNDARY, file_sha256
from app.model.text import tokenize
from training import teacher
from training.data import read_documents
from training.loop import Budget, History, Trainer, run
from training.model import PackedBiGRU
from training.segdata import (
    SENTENCE_SOURCES,
    collate,
    join_document,
    labelled,
    pseudo_documents,
    window,
)
from training.segscore import SpanCounts, gold_spans, rule_starts, spans_of


@dataclass
class SegmenterConfig:
    emb_dim: int = 384  # the teacher's table
    input: int = 32  # projection of the table the GRU reads
    case_dim: int = 8
    space_dim: int = 8
    hidden: int = 64
    layers: int = 2
    dropout: float = 0.2
    epochs: int = 12
    batch: int = 32
    lr: float = 3e-3
    windows_per_doc: int = 8  # random windows drawn per document and epoch
    seed: int = 0


class Segmenter(nn.Module):
    def __init__(self, cfg: SegmenterConfig, table: Tensor):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("table", table.to(torch.float16))
        self.proj = nn.Linear(cfg.emb_dim, cfg.input, bias=False)
        self.case = nn.Embedding(NUM_CASE_CLASSES, cfg.case_dim, padding_idx=0)
        self.space = nn.Embedding(NUM_SPACE_CLASSES, cfg.space_dim, padding_idx=0)
        self.drop = nn.Dropout(cfg.dropout)
        width = cfg.input + cfg.case_dim + cfg.space_dim
        self.gru = PackedBiGRU(width, cfg.hidden, cfg.layers, cfg.dropout)
        self.out = nn.Linear(2 * cfg.hidden, 1)

    def fold(self) -> None:
        """The projected table as a buffer, looked up instead of computed (the export's form)."""
        with torch.no_grad():
            self.register_buffer("folded", self.proj(self.table.float()).contiguous())

    def unfold(self) -> None:
        if hasattr(self, "folded"):
            delattr(self, "folded")

    def forward(self, input_ids: Tensor, case_ids: Tensor, space_ids: Tensor, lengths: Tensor):
        """(B, T) each piece's sentence-start logit."""
        folded = getattr(self, "folded", None)
        if folded is not None:
            rows = nn.functional.embedding(input_ids, folded)
        else:
            rows = self.proj(nn.functional.embedding(input_ids, self.table).float())
        x = torch.cat([rows, self.case(case_ids), self.space(space_ids)], dim=-1)
        h = self.drop(self.gru(self.drop(x), lengths))
        return self.out(h).squeeze(-1)


def fit(
    model: Segmenter, docs: list[list[list[str]]], wp: WordPiece, cfg: SegmenterConfig
) -> History:
    """Train with the loop on fresh noisy joins of `docs` each epoch; the last epoch is kept
    (the threshold, chosen after training, is what dev decides)."""
    rng = random.Random(cfg.seed)
    torch.manual_seed(cfg.seed)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    steps_per_epoch = len(docs) * cfg.windows_per_doc // cfg.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, cfg.lr, total_steps=cfg.epochs * steps_per_epoch + 1
    )

    def batches(epoch: int) -> list[list[dict]]:
        items = [labelled(*join_document(d, rng), wp) for d in docs]
        rows = [window(it, rng) for it in items for _ in range(cfg.windows_per_doc)]
        rows.sort(key=lambda r: len(r["input_ids"]) + rng.random() * 8)
        chunks = [rows[j : j + cfg.batch] for j in range(0, len(rows), cfg.batch)]
        rng.shuffle(chunks)
        return chunks[:steps_per_epoch]

    def step(chunk: list[dict]) -> dict[str, float]:
        b = collate(chunk)
        logits = model(b["input_ids"], b["case_ids"], b["space_ids"], b["lengths"])
        mask = b["labels"] >= 0
        loss = nn.functional.binary_cross_entropy_with_logits(
            logits[mask], b["labels"][mask].float()
        )
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        sched.step()
        return {"loss": loss.item()}

    model.train()
    return run(Trainer(batches=batches, step=step), Budget(cfg.epochs))


@torch.inference_mode()
def word_logits(model: Segmenter, text: str, wp: WordPiece) -> tuple[list, np.ndarray]:
    """A text's tokens and each one's sentence-start logit, read in windows as the service does."""
    model.eval()
    tokens = tokenize(text)
    if not tokens:
        return tokens, np.zeros(0, dtype=np.float32)
    f = text_features(text, tokens, wp)
    wins = windows(len(f.input_ids))
    logits = []
    for w in wins:
        part = [
            torch.from_numpy(a[w.start : w.end].astype(np.int64))[None]
            for a in (f.input_ids, f.case_ids, f.space_ids)
        ]
        logits.append(model(*part, torch.tensor([w.end - w.start]))[0].numpy())
    return tokens, word_scores(f, wins, logits)


def dev_f1(
    model: Segmenter, docs: list[list[list[str]]], wp: WordPiece, thresholds: list[float]
) -> dict[float, float]:
    """Sentence F1 on whole documents joined by spaces, per threshold."""
    scored = []
    for doc in docs:
        text, starts = join_document(doc, None)
        tokens, logits = word_logits(model, text, wp)
        scored.append((tokens, logits, gold_spans([s for p in doc for s in p], starts)))
    out = {}
    for th in thresholds:
        counts = SpanCounts()
        for tokens, logits, gold in scored:
            counts.add(spans_of(tokens, sentence_starts(logits, th)), gold)
        out[th] = counts.f1()
    return out


THRESHOLDS = [-1.5, -1.0, -0.5, 0.0, 0.5, 1.0]


def train_segmenter(
    data_dir: Path, cfg: SegmenterConfig, per_source: int
) -> tuple[Segmenter, dict]:
    """EWT train's documents (3 times) and corpus pseudo-documents; the threshold is the one
    best on EWT dev documents. Returns the model and its facts (figures per epoch, threshold)."""
    wp = WordPiece.from_file(teacher.vocab_file())
    ewt = data_dir / "ud-ewt"
    train = read_documents(ewt / "en_ewt-ud-train.conllu")
    dev = read_documents(ewt / "en_ewt-ud-dev.conllu")
    sentences = data_dir / "sentences" / "sentences.txt"
    extra = (
        pseudo_documents(sentences, SENTENCE_SOURCES, per_source, cfg.seed) if per_source else []
    )
    model = Segmenter(cfg, teacher.input_table())
    history = fit(model, train * 3 + extra, wp, cfg)
    f1 = dev_f1(model, dev, wp, THRESHOLDS)
    threshold = max(f1, key=f1.__getitem__)
    print(f"dev sentence F1 by threshold: {f1}; threshold {threshold}", flush=True)
    rule = SpanCounts()
    for doc in dev:
        text, starts = join_document(doc, None)
        tokens = tokenize(text)
        rule.add(
            spans_of(tokens, rule_starts(tokens)), gold_spans([s for p in doc for s in p], starts)
        )
    facts = {
        "config": asdict(cfg),
        "pseudo_documents": len(extra),
        "threshold": threshold,
        "dev_documents_f1": f1[threshold],
        "dev_documents_f1_by_threshold": f1,
        "rule_baseline_dev_documents_f1": rule.f1(),
        "history": history.rows,
    }
    return model, facts


SEGMENTER_INPUTS = ["input_ids", "case_ids", "space_ids", "lengths"]


def export_segmenter(model: Segmenter, path: Path) -> float:
    """Write the folded segmenter to `path` as ONNX; its parity: max |ORT on a padded batch -
    PyTorch on each window alone|."""
    import onnxruntime as ort

    model.eval()
    model.fold()
    batch = _example([9, 4, 31, 1, 17], seed=0)
    names = {k: {0: "batch", 1: "time"} for k in SEGMENTER_INPUTS[:3]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(
            model,
            tuple(torch.from_numpy(batch[k]) for k in SEGMENTER_INPUTS),
            str(path),
            input_names=SEGMENTER_INPUTS,
            output_names=[BOUNDARY],
            dynamic_axes={**names, "lengths": {0: "batch"}, BOUNDARY: {0: "batch", 1: "time"}},
            opset_version=17,
            dynamo=False,
        )
    model.unfold()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    lengths = [1, 60, 17, 3, 42, 8]
    batch = _example(lengths, seed=1)
    (got,) = sess.run([BOUNDARY], batch)
    worst = 0.0
    with torch.inference_mode():
        for i, n in enumerate(lengths):
            alone = [torch.from_numpy(batch[k][i : i + 1, :n]) for k in SEGMENTER_INPUTS[:3]]
            ref = model(*alone, torch.tensor([n]))[0].numpy()
            worst = max(worst, float(np.abs(got[i, :n] - ref).max()))
    return worst


def _example(lengths: list[int], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    T, B = max(lengths), len(lengths)
    out = {k: np.zeros((B, T), dtype=np.int64) for k in SEGMENTER_INPUTS[:3]}
    for i, n in enumerate(lengths):
        out["input_ids"][i, :n] = rng.integers(999, 30522, n)
        out["case_ids"][i, :n] = rng.integers(1, NUM_CASE_CLASSES, n)
        out["space_ids"][i, :n] = rng.integers(1, NUM_SPACE_CLASSES, n)
    out["lengths"] = np.asarray(lengths, dtype=np.int64)
    return out


def save_segmenter(model: Segmenter, facts: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v for k, v in model.state_dict().items() if k != "table"}
    torch.save({"config": asdict(model.cfg), "state": state, "facts": facts}, path)


def load_segmenter(path: Path) -> tuple[Segmenter, dict]:
    saved = torch.load(path, weights_only=False)
    model = Segmenter(SegmenterConfig(**saved["config"]), teacher.input_table())
    missing, unexpected = model.load_state_dict(saved["state"], strict=False)
    if set(missing) != {"table"} or unexpected:
        raise ValueError(f"{path}: missing {missing}, unexpected {unexpected}")
    return model.eval(), saved["facts"]


def add_segmenter(path: Path, out: Path) -> dict:
    """segmenter.onnx beside an exported model, its threshold in model.json; its facts. `path`:
    a segmenter.pt, or a model folder whose segmenter is copied as it is."""
    onnx_path = out / "segmenter.onnx"
    if path.is_dir():
        shutil.copyfile(path / "segmenter.onnx", onnx_path)
        facts = json.loads((path / "card.json").read_text())["segmenter"]
    else:
        model, facts = load_segmenter(path)
        facts = {**facts, "parity_max_abs_diff": export_segmenter(model, onnx_path)}
        facts |= {"sha256": file_sha256(onnx_path), "file_bytes": onnx_path.stat().st_size}
    spec_path = out / "model.json"
    spec = json.loads(spec_path.read_text())
    spec["segmenter"] = {"threshold": facts["threshold"], "window": WINDOW, "margin": MARGIN}
    spec_path.write_text(json.dumps(spec, indent=1))
    card_path = out / "card.json"  # a folder with a card keeps it true to the new file
    if card_path.is_file():
        card = json.loads(card_path.read_text())
        card["segmenter"] = {k: v for k, v in facts.items() if k != "history"}
        card_path.write_text(json.dumps(card, indent=1))
    return facts
