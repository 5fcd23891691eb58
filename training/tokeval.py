"""Measure `app.model.text.tokenize` against the gold words of UD English-EWT.

    python -m training.tokeval --data ../shared/data [--split dev]

Method: character spans, as in the CoNLL 2018 shared-task scorer. In EWT the gold syntactic
words, read left to right, spell the `# text` line once whitespace is removed (multiword tokens
such as `don't` -> `do n't` or `gonna` -> `gon na` split the surface without changing it), so
each gold word is located at the next non-space offset and gets an exact (start, end) span. A
predicted token is correct when its span equals a gold word's span; precision, recall and F1 are
micro-averaged over all words. A sentence whose words cannot be located that way (not the case
in EWT r2.16) falls back to matching token strings as multisets.

Error patterns: gold words and predicted tokens whose spans overlap are grouped into clusters;
every cluster that is not one exact match is an error, reported as `gold words => predicted`.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from app.model.text import tokenize
from training.data import read_conllu

Span = tuple[int, int]


def gold_spans(text: str, words: list[str]) -> list[Span] | None:
    """Character span of each gold word, or None when the words do not spell the text."""
    spans, pos = [], 0
    for w in words:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if not text.startswith(w, pos):
            return None
        spans.append((pos, pos + len(w)))
        pos += len(w)
    return spans


def _error_patterns(text: str, gold: list[Span], pred: list[Span]) -> list[str]:
    """`gold => pred` for each cluster of overlapping spans that is not one exact match."""
    spans = sorted([(s, e, 0) for s, e in gold] + [(s, e, 1) for s, e in pred])
    patterns, cluster, reach = [], [], -1
    for s, e, side in [*spans, (sys.maxsize, sys.maxsize, 0)]:
        if s >= reach and cluster:
            g = [text[a:b] for a, b, k in cluster if k == 0]
            p = [text[a:b] for a, b, k in cluster if k == 1]
            if g != p or len(g) != 1:
                patterns.append(f"{' '.join(g)} => {' '.join(p)}")
            cluster = []
        cluster.append((s, e, side))
        reach = max(reach, e) if len(cluster) > 1 else e
    return patterns


def evaluate(data_dir: Path, split: str = "dev") -> dict:
    """Word-level precision/recall/F1 (0-1) of the tokenizer on one EWT split."""
    sentences = read_conllu(data_dir / "ud-ewt" / f"en_ewt-ud-{split}.conllu")
    n_gold = n_pred = n_correct = unaligned = 0
    errors: Counter[str] = Counter()
    for sent in sentences:
        tokens = tokenize(sent.text)
        n_gold += len(sent.words)
        n_pred += len(tokens)
        gold = gold_spans(sent.text, sent.words)
        if gold is None:
            unaligned += 1
            n_correct += sum((Counter(sent.words) & Counter(t.text for t in tokens)).values())
            continue
        pred = [(t.start, t.end) for t in tokens]
        n_correct += len(set(gold) & set(pred))
        errors.update(_error_patterns(sent.text, gold, pred))
    precision = n_correct / n_pred if n_pred else 0.0
    recall = n_correct / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "split": split,
        "sentences": len(sentences),
        "unaligned_sentences": unaligned,
        "gold": n_gold,
        "pred": n_pred,
        "correct": n_correct,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "errors": errors.most_common(20),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder holding ud-ewt/")
    parser.add_argument("--split", default="dev", help="dev (tune here) or train")
    args = parser.parse_args(argv)
    r = evaluate(args.data, args.split)
    print(
        f"{r['split']}: {r['sentences']} sentences, {r['gold']} gold words, {r['pred']} tokens, "
        f"{r['correct']} correct, {r['unaligned_sentences']} unaligned sentences"
    )
    print(f"P {100 * r['precision']:.2f}  R {100 * r['recall']:.2f}  F1 {100 * r['f1']:.2f}")
    print("most frequent errors (gold => predicted):")
    for pattern, count in r["errors"]:
        print(f"{count:6d}  {pattern}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
