"""Dev scores: accuracy of a softmax head, conlleval-style entity micro P/R/F1 of a span head."""

from __future__ import annotations

from app.model.decode import iob2_spans


def accuracy(gold: list[list[str]], pred: list[list[str]]) -> float:
    pairs = [(g, p) for gs, ps in zip(gold, pred, strict=True) for g, p in zip(gs, ps, strict=True)]
    return 100 * sum(g == p for g, p in pairs) / max(len(pairs), 1)


def span_scores(gold: list[list[str]], pred: list[list[str]]) -> tuple[float, float, float]:
    """Precision, recall and F1 (%) of exact spans with their type."""
    tp = n_gold = n_pred = 0
    for gs, ps in zip(gold, pred, strict=True):
        g, p = set(iob2_spans(gs)), set(iob2_spans(ps))
        tp += len(g & p)
        n_gold += len(g)
        n_pred += len(p)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return 100 * precision, 100 * recall, 100 * f1


def head_scores(
    decoders: dict[str, str], gold: dict[str, list[list[str]]], pred: dict[str, list[list[str]]]
) -> dict[str, float]:
    """`<head>_acc` of each softmax head; `<head>_precision`, `_recall`, `_f1` of a CRF head."""
    out: dict[str, float] = {}
    for name, decoder in decoders.items():
        if decoder == "crf":
            p, r, f = span_scores(gold[name], pred[name])
            out |= {f"{name}_precision": p, f"{name}_recall": r, f"{name}_f1": f}
        else:
            out[f"{name}_acc"] = accuracy(gold[name], pred[name])
    return out


def headline(decoders: dict[str, str]) -> list[str]:
    """Each head's headline figure: a span head's F1, another head's accuracy."""
    return [f"{n}_f1" if d == "crf" else f"{n}_acc" for n, d in decoders.items()]


def main_score(decoders: dict[str, str], scores: dict[str, float]) -> float:
    """What the best dev epoch maximises by default: the sum of each head's headline figure."""
    return sum(scores[key] for key in headline(decoders))


def tagging_scores(
    gold_upos: list[list[str]],
    pred_upos: list[list[str]],
    gold_ner: list[list[str]],
    pred_ner: list[list[str]],
) -> dict[str, float]:
    """The EWT tagger's figures: UPOS accuracy and NER entity P/R/F1."""
    decoders = {"upos": "softmax", "ner": "crf"}
    return head_scores(
        decoders, {"upos": gold_upos, "ner": gold_ner}, {"upos": pred_upos, "ner": pred_ner}
    )
