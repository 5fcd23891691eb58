"""The model on ONNX Runtime: load and check a model directory, pick providers, run arrays.

A model directory, as `training/export.py` writes it: model.onnx, vocab.txt, model.json
(inputs, outputs, heads: each a name, its labels, its decoder and a CRF head's weights;
embedding_dim, null for a tagger without a sentence encoder) and, for a shipped model,
card.json (name, version, sha256 of model.onnx) and README.md. A head named `h` is the graph's
output `h_logits`. A model.json without `heads` (bigru-en 0.3.0's) names `upos_labels`,
`ner_labels` and `crf` instead: the heads `upos` (softmax) and `ner` (CRF).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from app.errors import BackendError, ModelLoadError

log = logging.getLogger(__name__)

INPUTS = ("input_ids", "case_ids", "lengths")
EMBEDDING = "embedding"
# What each task asks bigru-en's graph for; a model's own is `ModelSpec.task_outputs`.
TASK_OUTPUTS = {"tag": ["upos_logits", "ner_logits"], "embed": [EMBEDDING]}
OUTPUTS = [*TASK_OUTPUTS["tag"], *TASK_OUTPUTS["embed"]]
# Boolean inputs of a gated graph (training/gate.py): each encoder runs only when asked for.
GATES = {"want_tags": TASK_OUTPUTS["tag"], "want_embedding": TASK_OUTPUTS["embed"]}
_PROVIDERS = {"cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}
_CPU = _PROVIDERS["cpu"]


@dataclass(frozen=True)
class HeadSpec:
    """One tagging head: per-token labels by softmax, or IOB2 spans by a CRF."""

    name: str
    labels: list[str]
    decoder: str  # "softmax" or "crf"
    crf: dict[str, Any] | None  # transitions (n, n), start (n,), end (n,); CRF heads only


def _head(raw: dict[str, Any]) -> HeadSpec:
    crf = None
    if raw["decoder"] == "crf":
        crf = {
            k: np.asarray(raw["crf"][k], dtype=np.float64) for k in ("transitions", "start", "end")
        }
    elif raw["decoder"] != "softmax":
        raise ValueError(f"head {raw['name']}: unknown decoder {raw['decoder']!r}")
    return HeadSpec(str(raw["name"]), [str(t) for t in raw["labels"]], raw["decoder"], crf)


def read_heads(spec: dict[str, Any]) -> list[HeadSpec]:
    """The heads of a model.json, in output order."""
    if "heads" in spec:
        return [_head(h) for h in spec["heads"]]
    upos = {"name": "upos", "labels": spec["upos_labels"], "decoder": "softmax"}
    ner = {"name": "ner", "labels": spec["ner_labels"], "decoder": "crf", "crf": spec["crf"]}
    return [_head(upos), _head(ner)]


@dataclass(frozen=True)
class ModelSpec:
    """What the rest of the service needs to know about a model directory."""

    name: str
    version: str
    sha256: str
    heads: list[HeadSpec]
    embedding_dim: int | None  # None: no sentence encoder
    vocab: list[str]

    @property
    def task_outputs(self) -> dict[str, list[str]]:
        """What each task asks the graph for; the one statement of the task -> outputs contract."""
        embed = [EMBEDDING] if self.embedding_dim is not None else []
        return {"tag": [f"{h.name}_logits" for h in self.heads], "embed": embed}

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
        return cls(
            name=str(card.get("name") or model_dir.resolve().name),
            version=str(card.get("version") or "unknown"),
            sha256=digest,
            heads=heads,
            embedding_dim=embedding_dim,
            vocab=vocab,
        )


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def gate_feeds(input_names: set[str], outputs: list[str]) -> dict[str, np.ndarray]:
    """The gate inputs the graph has, each true if one of its encoder's outputs is wanted:
    the embedding is the sentence encoder's, every other output the tagger's."""
    wanted = {
        "want_tags": any(o != EMBEDDING for o in outputs),
        "want_embedding": EMBEDDING in outputs,
    }
    return {flag: np.array(wanted[flag]) for flag in GATES if flag in input_names}


def select_providers(requested: list[str], available: list[str]) -> list[str]:
    """ORT provider names for `requested` ("cuda", "cpu"), in order, the ones available only,
    always ending with CPU."""
    chosen: list[str] = []
    for short in requested:
        name = _PROVIDERS[short]
        if name not in available:
            log.warning("%s requested but not available in this onnxruntime; using CPU", name)
        elif name not in chosen:
            chosen.append(name)
    if _CPU in chosen:
        chosen.remove(_CPU)
    return [*chosen, _CPU]


class OnnxBackend:
    """One ORT session; `run` may be called from several worker threads at once."""

    def __init__(self, model_dir: Path, providers: list[str], intra_op_threads: int) -> None:
        self.spec = ModelSpec.load(model_dir)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = intra_op_threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        chosen = select_providers(providers, ort.get_available_providers())
        try:
            self.session = ort.InferenceSession(
                str(model_dir / "model.onnx"), opts, providers=chosen
            )
        except Exception as e:  # ORT raises its own Fail/InvalidGraph/... types
            raise ModelLoadError(f"{model_dir}/model.onnx: cannot load: {e}") from e
        self._check_graph()
        self._inputs = {i.name for i in self.session.get_inputs()}
        log.info("loaded %s %s on %s", self.spec.name, self.spec.version, self.providers)

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    def _check_graph(self) -> None:
        inputs = {i.name for i in self.session.get_inputs()}
        outputs = {o.name: o.shape for o in self.session.get_outputs()}
        missing = [n for n in INPUTS if n not in inputs]
        wanted = [n for names in self.spec.task_outputs.values() for n in names]
        missing += [n for n in wanted if n not in outputs]
        if missing:
            raise ModelLoadError(f"model.onnx lacks {missing}")
        want = {f"{h.name}_logits": len(h.labels) for h in self.spec.heads}
        if self.spec.embedding_dim is not None:
            want[EMBEDDING] = self.spec.embedding_dim
        for name, size in want.items():
            got = outputs[name][-1]
            if isinstance(got, int) and got != size:  # symbolic dims are not checked
                raise ModelLoadError(f"model.onnx {name} has {got} columns, model.json says {size}")

    def run(self, feeds: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:
        """Run the graph and return `outputs`. ORT executes every node whatever outputs are
        asked for, so a gated graph's encoders are switched on only for the outputs wanted."""
        try:
            values = self.session.run(outputs, {**feeds, **gate_feeds(self._inputs, outputs)})
        except Exception as e:  # any ORT failure becomes the domain's
            raise BackendError(f"inference failed: {e}") from e
        return dict(zip(outputs, values, strict=True))
