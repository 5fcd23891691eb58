"""The model on ONNX Runtime: load and check a model directory, pick providers, run arrays.

A model directory, as `training/export.py` writes it: model.onnx, vocab.txt, model.json
(inputs, outputs, label lists, embedding_dim, CRF weights) and, for a shipped model, card.json
(name, version, sha256 of model.onnx) and README.md.
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
# Boolean inputs of a gated graph (training/gate.py): each encoder runs only when asked for.
# What each task asks the graph for; the one statement of the task -> outputs contract.
TASK_OUTPUTS = {"tag": ["upos_logits", "ner_logits"], "embed": ["embedding"]}
OUTPUTS = [*TASK_OUTPUTS["tag"], *TASK_OUTPUTS["embed"]]
GATES = {"want_tags": TASK_OUTPUTS["tag"], "want_embedding": TASK_OUTPUTS["embed"]}
_PROVIDERS = {"cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}
_CPU = _PROVIDERS["cpu"]


@dataclass(frozen=True)
class ModelSpec:
    """What the rest of the service needs to know about a model directory."""

    name: str
    version: str
    sha256: str
    upos_labels: list[str]
    ner_labels: list[str]
    embedding_dim: int
    crf: dict[str, Any]  # transitions (n, n), start (n,), end (n,)
    vocab: list[str]

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
            upos, ner = list(spec["upos_labels"]), list(spec["ner_labels"])
            crf = {
                k: np.asarray(spec["crf"][k], dtype=np.float64)
                for k in ("transitions", "start", "end")
            }
            embedding_dim = int(spec["embedding_dim"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ModelLoadError(
                f"{model_dir}: unreadable model.json/card.json/vocab.txt: {e!r}"
            ) from e
        n = len(ner)
        if (
            crf["transitions"].shape != (n, n)
            or crf["start"].shape != (n,)
            or crf["end"].shape != (n,)
        ):
            raise ModelLoadError(f"{model_dir}/model.json: CRF shapes do not match {n} NER labels")
        if "[UNK]" not in vocab:
            raise ModelLoadError(f"{model_dir}/vocab.txt: no [UNK] piece")
        digest = file_sha256(model_dir / "model.onnx")
        if card.get("sha256") and card["sha256"] != digest:
            raise ModelLoadError(f"{model_dir}/model.onnx: sha256 {digest} != card.json's")
        return cls(
            name=str(card.get("name") or model_dir.resolve().name),
            version=str(card.get("version") or "unknown"),
            sha256=digest,
            upos_labels=upos,
            ner_labels=ner,
            embedding_dim=embedding_dim,
            crf=crf,
            vocab=vocab,
        )


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def gate_feeds(input_names: set[str], outputs: list[str]) -> dict[str, np.ndarray]:
    """The gate inputs the graph has, each true if one of its encoder's outputs is wanted."""
    return {
        flag: np.array(any(o in outputs for o in gated))
        for flag, gated in GATES.items()
        if flag in input_names
    }


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
        missing += [n for n in OUTPUTS if n not in outputs]
        if missing:
            raise ModelLoadError(f"model.onnx lacks {missing}")
        want = {
            "upos_logits": len(self.spec.upos_labels),
            "ner_logits": len(self.spec.ner_labels),
            "embedding": self.spec.embedding_dim,
        }
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
