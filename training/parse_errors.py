"""Where a parser's LAS is lost on gold words: wrong heads against wrong relations, by gold
relation (its LAS, its share of all errors) and by sentence length (`bigru eval --parse-errors`)."""

from __future__ import annotations

from collections import Counter

from app.model.decode import WordTags
from training.data import Sentence

LENGTHS = ((1, 10), (11, 20), (21, 30), (31, 50), (51, 10_000))


def error_table(sentences: list[Sentence], pred: list[WordTags], top: int = 12) -> str:
    """The error analysis as text: counts, the `top` relations by share of errors, lengths."""
    total, wrong = Counter[str](), Counter[str]()
    by_length, lost_by_length = Counter[int](), Counter[int]()
    wrong_head = wrong_rel = 0
    for s, p in zip(sentences, pred, strict=True):
        tags = p["deprel"]
        assert tags.heads is not None
        band = next(i for i, (lo, hi) in enumerate(LENGTHS) if lo <= len(s.words) <= hi)
        for i, (gold_head, gold_rel) in enumerate(zip(s.heads, s.deprels, strict=True)):
            head = 0 if tags.heads[i] == i else tags.heads[i] + 1
            rel, universal = tags.labels[i].split(":")[0], gold_rel.split(":")[0]
            total[universal] += 1
            by_length[band] += 1
            if head != gold_head or rel != universal:
                wrong[universal] += 1
                lost_by_length[band] += 1
                wrong_head += head != gold_head
                wrong_rel += head == gold_head
    errors = max(wrong_head + wrong_rel, 1)
    lines = [f"words {sum(total.values())}, LAS errors {wrong_head + wrong_rel}: wrong head "
             f"{wrong_head}, right head wrong relation {wrong_rel}",
             "relation: gold words, LAS, share of all errors"]  # fmt: skip
    for rel, n in wrong.most_common(top):
        las = 100 * (1 - n / total[rel])
        lines.append(f"  {rel:10} {total[rel]:6} {las:6.1f} {100 * n / errors:5.1f}%")
    lines.append("sentence length: words, LAS")
    for i, (lo, hi) in enumerate(LENGTHS):
        name = f"{lo}-{hi}" if hi < 10_000 else f"{lo}+"
        n = by_length[i]
        las = f"{100 * (1 - lost_by_length[i] / n):6.1f}" if n else "     -"
        lines.append(f"  {name:8} {n:6} {las}")
    return "\n".join(lines)
