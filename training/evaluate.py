"""Dev metrics: UPOS accuracy and conlleval-style entity micro F1 (exact span and type)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.backend import TASK_OUTPUTS, OnnxBackend
from app.decode import WordTags, iob2_spans, tag_decoder
from app.featurize import Features, WordPiece, featurize, pad_batch


def tagging_scores(
    gold_upos: list[list[str]],
    pred_upos: list[list[str]],
    gold_ner: list[list[str]],
    pred_ner: list[list[str]],
) -> dict[str, float]:
    correct = sum(
        g == p
        for gs, ps in zip(gold_upos, pred_upos, strict=True)
        for g, p in zip(gs, ps, strict=True)
    )
    total = sum(len(gs) for gs in gold_upos)
    tp = n_gold = n_pred = 0
    for gs, ps in zip(gold_ner, pred_ner, strict=True):
        g, p = set(iob2_spans(gs)), set(iob2_spans(ps))
        tp += len(g & p)
        n_gold += len(g)
        n_pred += len(p)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "upos_acc": 100 * correct / max(total, 1),
        "ner_precision": 100 * precision,
        "ner_recall": 100 * recall,
        "ner_f1": 100 * f1,
    }


class OnnxModel:
    """The exported model as the service runs it: its backend, featurizer and decoder."""

    def __init__(self, model_dir: Path, threads: int = 2):
        self.backend = OnnxBackend(model_dir, ["cpu"], threads)
        spec = self.backend.spec
        self.wp = WordPiece(spec.vocab)
        self.decoder = tag_decoder(spec.upos_labels, spec.ner_labels, spec.crf)

    def _runs(self, feats: list[Features], outputs: list[str], batch: int = 64):
        order = sorted(range(len(feats)), key=lambda i: feats[i].length)
        for j in range(0, len(order), batch):
            idx = order[j : j + batch]
            yield idx, self.backend.run(pad_batch([feats[i] for i in idx]), outputs)

    def tag(self, sentences: list[list[str]]) -> list[WordTags]:
        feats = [featurize(words, self.wp) for words in sentences]
        out: list[WordTags | None] = [None] * len(feats)
        for idx, run in self._runs(feats, TASK_OUTPUTS["tag"]):
            starts = [feats[i].word_starts for i in idx]
            tags = self.decoder.decode_batch(run["upos_logits"], run["ner_logits"], starts)
            for i, t in zip(idx, tags, strict=True):
                out[i] = t
        return out  # type: ignore[return-value]

    def embed(self, texts: list[str]) -> np.ndarray:
        from training.distill import student_features  # the featurization distillation used

        feats = student_features(texts, self.wp)
        out = np.zeros((len(feats), self.backend.spec.embedding_dim), dtype=np.float32)
        for idx, run in self._runs(feats, ["embedding"]):
            out[idx] = run["embedding"]
        return out


def evaluate(model_dir: Path, data_dir: Path, split: str = "dev", teacher: bool = False) -> dict:
    """Tagging metrics on gold words (UD+UNER join) and STS-B Spearman, from the ONNX model."""
    from training.data import load_tagging
    from training.sts import stsb_spearman

    model = OnnxModel(model_dir)
    sentences, report = load_tagging(data_dir, split)
    print(f"tagging {len(sentences)} {split} sentences ...", flush=True)
    pred = model.tag([s.words for s in sentences])
    result = tagging_scores(
        [s.upos for s in sentences],
        [p.upos for p in pred],
        [s.ner for s in sentences],
        [p.ner for p in pred],
    )
    result["sentences"] = len(sentences)
    result["skipped_sent_ids"] = report.skipped
    stsb = data_dir / "stsb" / f"sts-{split}.csv"
    if stsb.exists():
        print("STS-B ...", flush=True)
        result["stsb_spearman"] = stsb_spearman(model.embed, data_dir, split)
        if teacher:
            from training.distill import teacher_vectors

            result["teacher_stsb_spearman"] = stsb_spearman(
                lambda s: teacher_vectors(s, progress=False), data_dir, split
            )
    return result
