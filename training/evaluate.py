"""Dev metrics: UPOS accuracy and conlleval-style entity micro F1 (exact span and type)."""

from __future__ import annotations

from app.decode import iob2_spans


def tagging_scores(
    gold_upos: list[list[str]], pred_upos: list[list[str]],
    gold_ner: list[list[str]], pred_ner: list[list[str]],
) -> dict[str, float]:
    correct = sum(g == p for gs, ps in zip(gold_upos, pred_upos, strict=True) for g, p in zip(gs, ps, strict=True))
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
