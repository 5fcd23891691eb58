"""The decoder's lexicon (app.model.lexicon) from a treebank's train split, and its dev figures.

`bigru lexicon --model models/bigru-en --data ../shared/data` counts, in EWT train, the tags each
form took (by lower-cased form and UPOS for XPOS, by lower-cased form and XPOS for UFeats), the
XPOS seen with each UPOS, the UFeats seen with each XPOS, each form's most frequent lemma (by
form and XPOS, by form and UPOS, by lower-cased form and UPOS) and the set of lemmas; it writes
them beside the model as lexicon.json.gz, with the weight and floor that join them with the
heads.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter, defaultdict
from pathlib import Path

from app.model.lexicon import LEXICON_FILE, key
from app.model.spec import file_sha256
from training.data import Sentence, read_conllu

WEIGHT = 0.5  # chosen on EWT dev (HISTORY.md)
FLOOR = 0.001


def _shares(counts: dict[str, Counter[str]]) -> dict[str, dict[str, float]]:
    out = {}
    for k, c in counts.items():
        total = sum(c.values())
        out[k] = {label: round(n / total, 4) for label, n in c.most_common()}
    return out


def _majority(counts: dict[str, Counter[str]]) -> dict[str, list]:
    out = {}
    for k, c in counts.items():
        (lemma, n), total = c.most_common(1)[0], sum(c.values())
        out[k] = [lemma, round(n / total, 4)]
    return out


def build(train: list[Sentence], weight: float = WEIGHT, floor: float = FLOOR) -> dict:
    """The lexicon of `train` (sentences with XPOS, UFeats and lemmas), as lexicon.json holds it."""
    xpos_by_upos: dict[str, set[str]] = defaultdict(set)
    feats_by_xpos: dict[str, set[str]] = defaultdict(set)
    tables: dict[str, dict[str, Counter[str]]] = {
        name: defaultdict(Counter) for name in ("xpos", "feats", "by_xpos", "by_upos", "lower")
    }
    for s in train:
        for w, u, x, f, lemma in zip(s.words, s.upos, s.xpos, s.feats, s.lemmas, strict=True):
            low = w.lower()
            xpos_by_upos[u].add(x)
            feats_by_xpos[x].add(f)
            tables["xpos"][key(low, u)][x] += 1
            tables["feats"][key(low, x)][f] += 1
            tables["by_xpos"][key(w, x)][lemma] += 1
            tables["by_upos"][key(w, u)][lemma] += 1
            if u != "PROPN":
                tables["lower"][key(low, u)][lemma.lower()] += 1
    return {
        "weight": weight,
        "floor": floor,
        "xpos_by_upos": {u: sorted(xs) for u, xs in sorted(xpos_by_upos.items())},
        "feats_by_xpos": {x: sorted(fs) for x, fs in sorted(feats_by_xpos.items())},
        "xpos": _shares(tables["xpos"]),
        "feats": _shares(tables["feats"]),
        "lemma": {
            "xpos": _majority(tables["by_xpos"]),
            "upos": _majority(tables["by_upos"]),
            "lower": _majority(tables["lower"]),
            "known": sorted({lemma.lower() for s in train for lemma in s.lemmas}),
        },
    }


def from_ewt(data_dir: Path, weight: float = WEIGHT, floor: float = FLOOR) -> dict:
    """The lexicon of `data_dir`'s EWT train split."""
    return build(read_conllu(data_dir / "ud-ewt" / "en_ewt-ud-train.conllu"), weight, floor)


def write(lexicon: dict, model_dir: Path) -> dict:
    """lexicon.json.gz in `model_dir` (the same bytes for the same lexicon), and its facts for
    card.json."""
    path = model_dir / LEXICON_FILE
    text = json.dumps(lexicon, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    path.write_bytes(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))
    entries = len(lexicon["xpos"]) + len(lexicon["feats"])
    entries += sum(len(t) for t in lexicon["lemma"].values())  # the known lemmas too
    return {
        "sha256": file_sha256(path),
        "file_bytes": path.stat().st_size,
        "entries": entries,
        "weight": lexicon["weight"],
        "floor": lexicon["floor"],
    }
