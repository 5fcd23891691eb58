"""Export a checkpoint to ONNX (+ vocab, labels, CRF) and check it against PyTorch.

Route: the TorchScript exporter (`dynamo=False`) around pack_padded_sequence / pad_packed,
which wires each sentence's length into the ONNX GRU's `sequence_lens`, so the backward
direction starts at every sentence's own last piece. The dynamo exporter drops
`sequence_lens` (wrong backward states on padded batches) and fails on packing.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from app.model.backend import gate_feeds
from app.model.spec import (
    EMBEDDING,
    GATES,
    INPUTS,
    LAYER_GATES,
    PARSE,
    file_sha256,
    outputs_by_task,
)
from training import teacher
from training.gate import gate_file
from training.model import BiGRUModel


class _Graph(nn.Module):
    def __init__(self, model: BiGRUModel):
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, case_ids: Tensor, lengths: Tensor):
        return self.model(input_ids, case_ids, lengths)


def example_batch(lengths: list[int], seed: int = 0, vocab: int = 30522) -> dict[str, np.ndarray]:
    """A right-padded batch of random pieces with the given lengths (pads are id 0, case 0)."""
    rng = np.random.default_rng(seed)
    T = max(lengths)
    ids = np.zeros((len(lengths), T), dtype=np.int64)
    case = np.zeros((len(lengths), T), dtype=np.int64)
    for i, n in enumerate(lengths):
        ids[i, :n] = rng.integers(999 if vocab > 999 else 1, vocab, n)
        case[i, :n] = rng.integers(1, 6, n)
    return {"input_ids": ids, "case_ids": case, "lengths": np.asarray(lengths, dtype=np.int64)}


def example_slice(batch: dict[str, np.ndarray], i: int, n: int) -> dict[str, np.ndarray]:
    """Sentence i of a padded batch, alone and unpadded."""
    return {
        "input_ids": batch["input_ids"][i : i + 1, :n],
        "case_ids": batch["case_ids"][i : i + 1, :n],
        "lengths": batch["lengths"][i : i + 1],
    }


def export_onnx(model: BiGRUModel, path: Path) -> None:
    """The traced graph, then, if it has a sentence encoder, its two encoders gated behind
    `want_tags` / `want_embedding`."""
    model.eval()
    batch = {
        k: torch.from_numpy(v)
        for k, v in example_batch([7, 5, 3], vocab=model.table.shape[0]).items()
    }
    outputs = model.output_names()
    dyn = {
        "input_ids": {0: "batch", 1: "time"},
        "case_ids": {0: "batch", 1: "time"},
        "lengths": {0: "batch"},
        **{n: {0: "batch"} if n == EMBEDDING else {0: "batch", 1: "time"} for n in outputs},
    }
    model.fold()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and RNN notices
        torch.onnx.export(
            _Graph(model).eval(),
            tuple(batch[k] for k in INPUTS),
            str(path),
            input_names=list(INPUTS),
            output_names=outputs,
            dynamic_axes=dyn,
            opset_version=17,
            dynamo=False,
        )
    model.unfold()  # parity then compares the graph with the computed projections
    tasks = outputs_by_task(model.output_names())
    by_layer = layer_outputs_of(model)
    layers = {flag: by_layer[layer] for flag, layer in LAYER_GATES.items() if layer in by_layer}
    if tasks["embed"]:
        gate_file(path, {flag: tasks[task] for flag, task in GATES.items()}, layers)


def layer_outputs_of(model: BiGRUModel) -> dict[str, list[str]]:
    """Each optional layer's graph outputs (app.model.spec.layer_outputs, from the model)."""
    out: dict[str, list[str]] = {}
    for head in model.cfg.head_list():
        if head.get("layer"):
            out.setdefault(head["layer"], []).append(f"{head['name']}_logits")
    if model.parser is not None:
        out["parse"] = [PARSE]
    return out


def parity(model: BiGRUModel, onnx_path: Path, lengths: list[int], vocab: int = 30522) -> float:
    """Max |ORT(padded batch) - PyTorch(each sentence alone)| over every output, valid positions;
    each output from a run that asks for its encoder only."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    batch = example_batch(lengths, seed=1, vocab=vocab)
    names = {i.name for i in sess.get_inputs()}
    got = {}
    for wanted in outputs_by_task(model.output_names()).values():
        if wanted:
            gates = gate_feeds(names, wanted, layer_outputs_of(model))
            values = sess.run(wanted, {**batch, **gates})
            got.update(zip(wanted, values, strict=True))
    worst = 0.0
    with torch.inference_mode():
        for i, n in enumerate(lengths):
            one = example_slice(batch, i, n)
            alone = [o.numpy()[0] for o in model(*(torch.from_numpy(one[k]) for k in INPUTS))]
            for name, ref in zip(model.output_names(), alone, strict=True):
                out = got[name][i, :n] if name != EMBEDDING else got[name][i]
                worst = max(worst, float(np.abs(out - ref).max()))
    return worst


def _head(head: dict, labels: list[str], model: BiGRUModel) -> dict:
    """A head as model.json states it: name, decoder, labels and a CRF head's weights."""
    out = {"name": head["name"], "decoder": head["decoder"], "labels": labels}
    if head.get("pieces", "first") != "first":
        out["pieces"] = head["pieces"]
    if head.get("layer"):
        out["layer"] = head["layer"]
    if head["decoder"] == "crf":
        crf = model.crf
        assert crf is not None
        out["crf"] = {
            "transitions": crf.trans.tolist(),
            "start": crf.start.tolist(),
            "end": crf.end.tolist(),
        }
    return out


PARSER_HEAD = "deprel"  # the parse's head name: its relation labels, and what `heads` asks for


def _parser(model: BiGRUModel, labels: list[str]) -> dict:
    """The parser as model.json states it: its relations, and its weights the graph does not
    hold (app.model.parse)."""
    p = model.parser
    assert p is not None
    return {
        "name": PARSER_HEAD,
        "labels": labels,
        "arc": model.cfg.parse_arc,
        "rel": model.cfg.parse_rel,
        "root": p.root.tolist(),
        "root_bias": float((p.root @ p.arc_b).detach()),
        "rel_root": p.rel_root.tolist(),
        "rel_weight": p.rel_out.weight.T.tolist(),
        "rel_bias": p.rel_out.bias.tolist(),
    }


def export(model: BiGRUModel, ckpt: dict, out: Path) -> dict:
    """Write model.onnx, vocab.txt and model.json to `out`; returns export facts for the card."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "card.json").unlink(missing_ok=True)  # it describes the file about to be replaced
    onnx_path = out / "model.onnx"
    export_onnx(model, onnx_path)
    shutil.copyfile(teacher.vocab_file(), out / "vocab.txt")
    spec = {
        "inputs": INPUTS,
        "outputs": model.output_names(),
        "heads": [_head(h, ckpt["labels"][h["name"]], model) for h in model.cfg.head_list()],
        "embedding_dim": model.cfg.sent_dim or None,
    }
    if model.parser is not None:
        spec["parser"] = _parser(model, ckpt["labels"][PARSER_HEAD])
    (out / "model.json").write_text(json.dumps(spec, indent=1))
    err = parity(model, onnx_path, [1, 60, 17, 3, 42, 8, 25, 2])
    return {
        "parity_max_abs_diff": err,
        "sha256": file_sha256(onnx_path),
        "file_bytes": onnx_path.stat().st_size,
    }
