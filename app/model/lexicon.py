"""What the training words say of XPOS, UFeats and lemmas, joined with the heads' own scores.

A morphology head sees a word through the tagger's states; the treebank it was trained on also
says, word by word, which tags and lemmas that form took. As UDPipe's morphological dictionary
and spaCy's lookup lemmatizer do, the decoder joins the two (model directory: lexicon.json.gz,
built by `bigru lexicon`):

- `xpos`: only tags seen with the word's UPOS (`NOUN` -> `NN`, `NNS`, ...), each weighed by the
  head's probability times ((share + floor) / floor) ** weight, where share is the tag's share
  of the form's uses with that UPOS in training (a tag the form never took keeps its weight);
- `feats`: only feature strings seen with the chosen XPOS, weighed the same way by the form's
  shares with that XPOS;
- `lemma`: a form seen in training takes its most frequent lemma with that XPOS, else with that
  UPOS, else that of its lower-cased form with that UPOS (proper nouns keep their case); its
  score is that lemma's share. For an unseen form, the head's edit script, unless a script of
  its best three (each at least a tenth as likely as the best) makes a lemma seen in training
  and the best does not: then the first that does (the guesser's dictionary check).

A tag's score is its share of the joined weights. The decoder hands over every word of a batch
at once. The heads are found by name: `upos`, `xpos`, `feats` and `lemma`.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.model.decode import HeadTags
from app.model.lemma import apply_script, edit_script

LEXICON_FILE = "lexicon.json.gz"
REFINED = ("xpos", "feats", "lemma")
NEEDED = ("upos", *REFINED)  # the heads a model with a lexicon must have
GUESSES = 3  # an unseen form's edit scripts the dictionary check may choose among
GUESS_RATIO = 0.1  # ... each at least this likely against the head's best
# "form\tTAG" -> the label ids the form took with that tag, and the factor each is weighed by
_Factors = dict[str, tuple[np.ndarray, np.ndarray]]


def key(form: str, tag: str) -> str:
    return f"{form}\t{tag}"


def _allowed(given: dict[str, list[str]], outer: list[str], inner: list[str]) -> np.ndarray:
    """(len(outer), len(inner)): 1 where `given[outer]` lists the inner label, else 0; a row
    whose outer label `given` does not know allows every label."""
    index = {label: i for i, label in enumerate(inner)}
    out = np.ones((len(outer), len(inner)))
    for i, label in enumerate(outer):
        if label in given:
            out[i] = 0
            out[i, [index[t] for t in given[label] if t in index]] = 1
    return out


def _factors(
    shares: dict[str, dict[str, float]], labels: list[str], weight: float, floor: float
) -> _Factors:
    index = {label: i for i, label in enumerate(labels)}
    out = {}
    for k, of_label in shares.items():
        known = [(index[label], share) for label, share in of_label.items() if label in index]
        ids = np.array([i for i, _ in known], dtype=np.int64)
        out[k] = (ids, ((np.array([s for _, s in known]) + floor) / floor) ** weight)
    return out


def _scripts(lemmas: dict[str, list]) -> dict[str, tuple[str, float]]:
    """Key "form\tTAG" -> (the edit script that makes the lemma of that form, its share)."""
    return {k: (edit_script(k.split("\t")[0], lemma), float(s)) for k, (lemma, s) in lemmas.items()}


@dataclass(frozen=True)
class Lexicon:
    allowed: dict[str, np.ndarray]  # "xpos": (n_upos, n_xpos) 0/1; "feats": (n_xpos, n_feats)
    factors: dict[str, _Factors]  # "xpos": by (lower form, UPOS); "feats": by (lower form, XPOS)
    scripts: dict[str, dict[str, tuple[str, float]]]  # "xpos", "upos": by (form, tag)
    lower: dict[str, tuple[str, float]]  # (lower form, UPOS) -> (its lemma, share)
    known: frozenset[str]  # every lemma of training, lower-cased
    labels: dict[str, list[str]]  # head -> its labels

    @property
    def heads(self) -> tuple[str, ...]:
        """The heads it answers (app.model.decode.Refiner)."""
        return REFINED

    @classmethod
    def load(cls, path: Path, labels: dict[str, list[str]]) -> Lexicon:
        """`labels`: the model's labels of the `upos` head and of the heads it refines."""
        raw: dict[str, Any] = json.loads(gzip.decompress(path.read_bytes()))
        weight, floor = float(raw["weight"]), float(raw["floor"])
        lemma = raw["lemma"]
        return cls(
            allowed={
                "xpos": _allowed(raw["xpos_by_upos"], labels["upos"], labels["xpos"]),
                "feats": _allowed(raw["feats_by_xpos"], labels["xpos"], labels["feats"]),
            },
            factors={h: _factors(raw[h], labels[h], weight, floor) for h in ("xpos", "feats")},
            scripts={"xpos": _scripts(lemma["xpos"]), "upos": _scripts(lemma["upos"])},
            lower={k: (lem, float(s)) for k, (lem, s) in lemma["lower"].items()},
            known=frozenset(lemma["known"]),
            labels=labels,
        )

    def refine(
        self, words: Sequence[str], upos: np.ndarray, probs: dict[str, np.ndarray]
    ) -> dict[str, HeadTags]:
        """`xpos`, `feats` and `lemma` of N words (of any sentences) from the words, their UPOS
        label ids (N,) and the three heads' probabilities (N, n) each."""
        lower = [w.lower() for w in words]
        upos_labels = [self.labels["upos"][i] for i in upos.tolist()]
        xpos_ids, xpos = self._choose("xpos", probs["xpos"], upos, lower, upos_labels)
        _, feats = self._choose("feats", probs["feats"], xpos_ids, lower, xpos.labels)
        return {
            "xpos": xpos,
            "feats": feats,
            "lemma": self._lemmas(words, xpos.labels, upos_labels, probs["lemma"]),
        }

    def _choose(
        self, head: str, probs: np.ndarray, given: np.ndarray, forms: list[str], tags: list[str]
    ) -> tuple[np.ndarray, HeadTags]:
        weights = probs * self.allowed[head][given]
        table = self.factors[head]
        found = [(t, table[k]) for t, k in enumerate(map(key, forms, tags)) if k in table]
        if found:
            words, pairs = zip(*found, strict=True)
            cols = [ids for ids, _ in pairs]
            rows = np.repeat(words, [len(ids) for ids in cols])
            weights[rows, np.concatenate(cols)] *= np.concatenate([f for _, f in pairs])
        ids = weights.argmax(-1)
        rows = np.arange(len(ids))
        best = weights[rows, ids] / np.maximum(weights.sum(-1), 1e-300)
        return ids, HeadTags([self.labels[head][i] for i in ids.tolist()], best.tolist())

    def _lemmas(
        self, words: Sequence[str], xpos: list[str], upos: list[str], probs: np.ndarray
    ) -> HeadTags:
        ids = probs.argmax(-1)
        scripts = [self.labels["lemma"][i] for i in ids.tolist()]
        scores = probs[np.arange(len(ids)), ids].tolist()
        by_xpos, by_upos = self.scripts["xpos"], self.scripts["upos"]
        for t, word in enumerate(words):
            found = by_xpos.get(key(word, xpos[t])) or by_upos.get(key(word, upos[t]))
            if found is None:
                lemma = self.lower.get(key(word.lower(), upos[t]))
                found = None if lemma is None else (edit_script(word, lemma[0]), lemma[1])
            if found is None:
                found = self._guess(word, probs[t])
            scripts[t], scores[t] = found
        return HeadTags(scripts, scores)

    def _guess(self, word: str, probs: np.ndarray) -> tuple[str, float]:
        """The head's script for an unseen form, checked against the lemmas of training."""
        best = np.argsort(-probs)[:GUESSES]
        for i in best.tolist():
            if probs[i] < GUESS_RATIO * probs[best[0]]:
                break
            script = self.labels["lemma"][i]
            if apply_script(word, script).lower() in self.known:
                return script, float(probs[i])
        return self.labels["lemma"][best[0]], float(probs[best[0]])
