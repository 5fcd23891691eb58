"""What a model directory says about its model: its heads, its outputs per task, its vocabulary.

A model directory, as `training/export.py` writes it: model.onnx, vocab.txt, model.json
(inputs, outputs, heads: each a name, its labels, its decoder and a CRF head's weights;
embedding_dim, null for a tagger without a sentence encoder) and, for a shipped model,
card.json (name, version, sha256 of model.onnx) and README.md. A head named `h` is the graph's
output `h_logits`. A model.json without `heads` names `upos_labels`, `ner_labels` and `crf`
instead: the heads `upos` (softmax) and `ner` (CRF).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from app.model.crf import CRFDecoder
from app.model.decode import HeadDecoder, TagDecoder
from app.model.errors import ModelLoadError
from app.model.lexicon import LEXICON_FILE, NEEDED, Lexicon
from app.model.parse import TreeDecoder

INPUTS = ("input_ids", "case_ids", "lengths")  # the graph's inputs: (B, T), (B, T), (B,)
EMBEDDING = "embedding"  # the sentence encoder's output (B, D); a head's is `<name>_logits`
PARSE = "parse_features"  # the parsing layer's per-piece features (B, T, F), app.model.parse
BOUNDARY = "boundary_logits"  # the segmenter's (segmenter.onnx) output: (B, T) per piece
SEGMENTER_FILE = "segmenter.onnx"
# Boolean inputs of a gated graph (training/gate.py): each switches on the encoder of one task,
GATES = {"want_tags": "tag", "want_embedding": "embed"}
# and within the tagger, each of these switches on an optional layer, which only its heads read.
LAYER_GATES = {"want_morph": "morph", "want_parse": "parse"}


def outputs_by_task(outputs: Iterable[str]) -> dict[str, list[str]]:
    """What each task asks the graph for: the embedding for `embed`, every head (the parse
    included) for `tag`.
    The one statement of the task -> outputs contract; the service, the export and the
    gates all read it."""
    names = list(outputs)
    return {
        "tag": [n for n in names if n != EMBEDDING],
        "embed": [n for n in names if n == EMBEDDING],
    }


@dataclass(frozen=True)
class HeadSpec:
    """One tagging head: per-token labels by softmax, IOB2 spans by a CRF, lemmas by a
    softmax over edit scripts (app.model.lemma), which the service applies to each form, or a
    dependency tree (app.model.parse): each word's head and relation."""

    name: str
    labels: list[str]
    decoder: str  # "softmax", "crf", "lemma" or "tree"
    crf: dict[str, Any] | None  # transitions (n, n), start (n,), end (n,); CRF heads only
    pieces: str = "first"  # a word's scores: at its first piece, or "first+last" summed
    tree: dict[str, Any] | None = None  # the parser's weights outside the graph; "tree" only
    layer: str | None = None  # the optional layer of the tagger it reads (LAYER_GATES), if any


def _head(raw: dict[str, Any]) -> HeadSpec:
    crf = None
    if raw["decoder"] == "crf":
        crf = {
            k: np.asarray(raw["crf"][k], dtype=np.float64) for k in ("transitions", "start", "end")
        }
    elif raw["decoder"] not in ("softmax", "lemma"):
        raise ValueError(f"head {raw['name']}: unknown decoder {raw['decoder']!r}")
    pieces = str(raw.get("pieces", "first"))
    if pieces not in ("first", "first+last"):
        raise ValueError(f"head {raw['name']}: unknown pieces {pieces!r}")
    layer = raw.get("layer")
    if layer is not None and layer not in LAYER_GATES.values():
        raise ValueError(f"head {raw['name']}: unknown layer {layer!r}")
    labels = [str(t) for t in raw["labels"]]
    return HeadSpec(str(raw["name"]), labels, raw["decoder"], crf, pieces, layer=layer)


def _parser(raw: dict[str, Any]) -> HeadSpec:
    """model.json's `parser`: the dependency head, decoded from the graph's PARSE output."""
    tree = {k: np.asarray(raw[k], dtype=np.float32) for k in TREE_WEIGHTS}
    tree |= {"arc": int(raw["arc"]), "rel": int(raw["rel"])}
    return HeadSpec(str(raw["name"]), [str(t) for t in raw["labels"]], "tree", None,
                    "first+last", tree, "parse")  # fmt: skip


def read_heads(spec: dict[str, Any]) -> list[HeadSpec]:
    """The heads of a model.json, in output order; the parser's last."""
    if "heads" in spec:
        parser = [_parser(spec["parser"])] if "parser" in spec else []
        return [*(_head(h) for h in spec["heads"]), *parser]
    upos = {"name": "upos", "labels": spec["upos_labels"], "decoder": "softmax"}
    ner = {"name": "ner", "labels": spec["ner_labels"], "decoder": "crf", "crf": spec["crf"]}
    return [_head(upos), _head(ner)]


# The parser's weights that model.json carries (training.model.ParseLayer): the root's head
# features and bias, its relation features, and the relation classifier.
TREE_WEIGHTS = ("root", "root_bias", "rel_root", "rel_weight", "rel_bias")


def head_output(head: HeadSpec) -> str:
    """The graph output a head reads."""
    return PARSE if head.decoder == "tree" else f"{head.name}_logits"


def layer_outputs(heads: list[HeadSpec]) -> dict[str, list[str]]:
    """Each optional layer's graph outputs, by the heads that read it."""
    out: dict[str, list[str]] = {}
    for head in heads:
        if head.layer is not None and head_output(head) not in out.get(head.layer, []):
            out.setdefault(head.layer, []).append(head_output(head))
    return out


@dataclass(frozen=True)
class ModelSpec:
    """What the rest of the service needs to know about a model directory."""

    name: str
    version: str
    sha256: str
    heads: list[HeadSpec]
    embedding_dim: int | None  # None: no sentence encoder
    vocab: list[str]
    # A segmenter.onnx beside model.onnx splits raw text into sentences: a word starts one where
    # its logit is above this threshold (model.json `segmenter`). None: no segmenter.
    segmenter_threshold: float | None = None
    # lexicon.json.gz beside model.onnx: the training words' tags and lemmas, which the decoder
    # joins with the morphology heads' scores (app.model.lexicon). None: the heads alone.
    lexicon: Lexicon | None = None
    languages: list[str] | None = None  # what it was trained on (card.json); None: not stated
    license: str | None = None  # the model's own licence (card.json), an SPDX identifier

    @property
    def segmenter(self) -> bool:
        return self.segmenter_threshold is not None

    @property
    def outputs(self) -> list[str]:
        """The graph outputs the model.json promises, in head order, then the embedding."""
        embed = [EMBEDDING] if self.embedding_dim is not None else []
        return [*(head_output(h) for h in self.heads), *embed]

    @property
    def task_outputs(self) -> dict[str, list[str]]:
        """Each task's outputs; `segment` runs the segmenter's graph."""
        return {**outputs_by_task(self.outputs), "segment": [BOUNDARY] if self.segmenter else []}

    def tag_decoder(self) -> TagDecoder:
        """The one decoder of the model's tags: the service's batches and the evaluation
        (training/evaluate.py) both use it, so the evaluation measures what is served."""
        heads = [
            HeadDecoder(
                h.name,
                h.labels,
                None if h.crf is None else CRFDecoder.build(h.labels, **h.crf),
                h.pieces == "first+last",
                h.decoder == "lemma",
                None if h.tree is None else TreeDecoder(h.tree),
                head_output(h),
            )
            for h in self.heads
        ]
        return TagDecoder(heads, self.lexicon)

    @property
    def tasks(self) -> list[str]:
        return [task for task, outputs in self.task_outputs.items() if outputs]

    @classmethod
    def load(cls, model_dir: Path) -> ModelSpec:
        for name in ("model.onnx", "model.json", "vocab.txt"):
            if not (model_dir / name).is_file():
                raise ModelLoadError(f"{model_dir / name} not found")
        try:
            spec = json.loads((model_dir / "model.json").read_text(encoding="utf-8"))
            card_path = model_dir / "card.json"
            card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.is_file() else {}
            vocab = (model_dir / "vocab.txt").read_text(encoding="utf-8").splitlines()
            heads = read_heads(spec)
            dim = spec.get("embedding_dim")
            embedding_dim = None if dim is None else int(dim)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ModelLoadError(
                f"{model_dir}: unreadable model.json/card.json/vocab.txt: {e!r}"
            ) from e
        for head in heads:
            n = len(head.labels)
            crf = head.crf
            if crf is not None and (
                crf["transitions"].shape != (n, n)
                or crf["start"].shape != (n,)
                or crf["end"].shape != (n,)
            ):
                raise ModelLoadError(
                    f"{model_dir}/model.json: CRF shapes do not match {n} {head.name} labels"
                )
        if "[UNK]" not in vocab:
            raise ModelLoadError(f"{model_dir}/vocab.txt: no [UNK] piece")
        digest = file_sha256(model_dir / "model.onnx")
        if card.get("sha256") and card["sha256"] != digest:
            raise ModelLoadError(f"{model_dir}/model.onnx: sha256 {digest} != card.json's")
        for part, file in (("segmenter", SEGMENTER_FILE), ("lexicon", LEXICON_FILE)):
            part_sha = card.get(part, {}).get("sha256")
            if part_sha and not (model_dir / file).is_file():
                raise ModelLoadError(f"{model_dir}/{file} not found; card.json names it")
            if part_sha and part_sha != file_sha256(model_dir / file):
                raise ModelLoadError(f"{model_dir}/{file}: sha256 != card.json's")
        return cls(
            name=str(card.get("name") or model_dir.resolve().name),
            version=str(card.get("version") or "unknown"),
            sha256=digest,
            heads=heads,
            embedding_dim=embedding_dim,
            vocab=vocab,
            segmenter_threshold=_segmenter_threshold(model_dir, spec),
            lexicon=_lexicon(model_dir, heads),
            languages=card.get("languages"),
            license=card.get("license"),
        )


def _lexicon(model_dir: Path, heads: list[HeadSpec]) -> Lexicon | None:
    path = model_dir / LEXICON_FILE
    if not path.is_file():
        return None
    labels = {h.name: h.labels for h in heads}
    missing = [name for name in NEEDED if name not in labels]
    if missing:
        raise ModelLoadError(f"{path}: the model has no {missing} heads to refine")
    try:
        return Lexicon.load(path, labels)
    except (OSError, ValueError, KeyError, TypeError, EOFError) as e:
        raise ModelLoadError(f"{path}: unreadable: {e!r}") from e


def _segmenter_threshold(model_dir: Path, spec: dict[str, Any]) -> float | None:
    present = (model_dir / SEGMENTER_FILE).is_file()
    if present != ("segmenter" in spec):
        raise ModelLoadError(
            f"{model_dir}: {SEGMENTER_FILE} and model.json `segmenter` come together"
        )
    return float(spec["segmenter"]["threshold"]) if present else None


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
