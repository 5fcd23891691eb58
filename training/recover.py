"""A PyTorch checkpoint back from an exported model directory (model.onnx + model.json + card).

Training runs keep their checkpoints outside the repository; the shipped ONNX file is what
lasts. Reading its weights back lets a later run fine-tune the shipped model
(`bigru recover`, then `bigru train --init`). The ONNX GRU keeps gates in z, r, n order and
both biases in one tensor; PyTorch keeps r, z, n and two tensors.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from app.model.spec import read_heads
from training import teacher
from training.checkpoint import save_checkpoint
from training.model import BiGRUModel, ModelConfig


def _graphs(graph: onnx.GraphProto, owner: str = ""):
    """(name of the node that owns it, graph) for the graph and every subgraph, depth first."""
    yield owner, graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attr.g, owner or node.name)


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a))  # a writable copy


def _zrn_to_rzn(w: np.ndarray) -> np.ndarray:
    z, r, n = np.split(w, 3, axis=0)
    return np.concatenate([r, z, n], axis=0)


def _gru_state(prefix: str, grus: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict:
    """nn.GRU state entries from ONNX (W, R, B) per layer, in layer order."""
    state = {}
    for layer, (W, R, B) in enumerate(grus):
        for d, suffix in enumerate(("", "_reverse")):
            wb, rb = np.split(B[d], 2)
            for name, value in (
                ("weight_ih", W[d]),
                ("weight_hh", R[d]),
                ("bias_ih", wb),
                ("bias_hh", rb),
            ):
                state[f"{prefix}.{name}_l{layer}{suffix}"] = _tensor(_zrn_to_rzn(value))
    return state


def _unfold(table: torch.Tensor, folded: np.ndarray) -> np.ndarray:
    """The (C, E) projection W with table @ W.T == folded (least squares; the table has full
    column rank, so this is the projection the export folded, to float32 rounding)."""
    E = table.float().numpy().astype(np.float64)
    W_T, *_ = np.linalg.lstsq(E, folded.astype(np.float64), rcond=None)
    return W_T.T.astype(np.float32)


def _weights(proto: onnx.ModelProto, init: dict[str, np.ndarray], cfg: ModelConfig):
    """The graph's GRUs per encoder, the tagger's per-piece heads in output order and each
    encoder's input projection, read from its nodes (the parsing layer's left out)."""
    grus: dict[str, list] = {"tag": [], "sent": []}
    head_weights: list[np.ndarray] = []
    tag_width = (cfg.tag_input or cfg.emb_dim) + cfg.case_dim + (cfg.lex_dim if cfg.lex_rows else 0)
    morph_in = (2 * cfg.hidden + tag_width, cfg.morph_input)  # its (in, out) shape, if any
    projections: dict[str, np.ndarray] = {}
    for owner, g in _graphs(proto.graph):
        if owner == "if_want_parse":
            continue
        key = "sent" if owner == "if_want_embedding" else "tag"
        for node in g.node:
            if node.op_type == "GRU":
                W, R, B = (init[n] for n in node.input[1:4])
                grus[key].append((W, R, B))
            elif node.op_type == "MatMul" and node.input[1] in init:
                w = init[node.input[1]]
                if w.shape[0] == cfg.emb_dim:  # (E, C): an input projection
                    projections[key] = w.T
                elif cfg.morph_input and w.shape == morph_in:
                    projections["morph"] = w.T
                elif key == "tag":
                    head_weights.append(w.T)
    return grus, head_weights, projections


def recover(model_dir: Path) -> tuple[BiGRUModel, dict]:
    """The model an export wrote to `model_dir`, as a BiGRUModel, and its card; a parsing layer
    is left out."""
    card = json.loads((model_dir / "card.json").read_text())
    spec = json.loads((model_dir / "model.json").read_text())
    proto = onnx.load(str(model_dir / "model.onnx"))
    init = {
        t.name: numpy_helper.to_array(t) for _, g in _graphs(proto.graph) for t in g.initializer
    }
    arch = {k: v for k, v in card["architecture"].items() if k in ModelConfig.__dataclass_fields__}
    arch["parse_hidden"] = 0  # the parsing layer is not read back: `bigru parse` trains a new one
    cfg = ModelConfig(**arch)
    model = BiGRUModel(cfg, teacher.input_table())
    grus, head_weights, projections = _weights(proto, init, cfg)
    for key in ("tag", "sent"):  # folded by the export: recovered from the table they came from
        if f"model.folded_{key}" in init:
            projections[key] = _unfold(model.table, init[f"model.folded_{key}"])
    state = {
        "lex_index": _tensor(init["model.lex_index"].astype(np.int64)),
        "case.weight": _tensor(init["model.case.weight"]),
        "lex.weight": _tensor(init["model.lex.weight"]),
        **_gru_state("tagger.gru", grus["tag"][: cfg.layers]),
    }
    if cfg.morph_hidden:  # the morphology layer runs after the tagger's GRUs
        state |= _gru_state("morph.gru", grus["tag"][cfg.layers :])
    tagging = [h for h in read_heads(spec) if h.tree is None]
    for head, w in zip(tagging, head_weights, strict=True):
        state[f"{head.name}.weight"] = _tensor(w)
        state[f"{head.name}.bias"] = _tensor(init[f"model.{head.name}.bias"])
        if head.crf is not None:
            crf = {"trans": "transitions", "start": "start", "end": "end"}
            state |= {f"crf.{k}": torch.tensor(head.crf[v]).float() for k, v in crf.items()}
    if cfg.sent_dim:
        state["sent_proj.weight"] = _tensor(init["model.sent_proj.weight"])
        state["sent_proj.bias"] = _tensor(init["model.sent_proj.bias"])
        state |= _gru_state("sent.gru", grus["sent"])
    for key, w in projections.items():
        state[f"{key}_in.weight"] = _tensor(w)
    if cfg.morph_input:
        state["morph_in.bias"] = _tensor(init["model.morph_in.bias"])
    missing, unexpected = model.load_state_dict(state, strict=False)
    if set(missing) != {"table"} or unexpected:
        raise ValueError(f"{model_dir}: missing {missing}, unexpected {unexpected}")
    return model.eval(), card


def write_checkpoint(model_dir: Path, out: Path) -> None:
    """Save the recovered model as a tagger checkpoint (its sentence encoder included)."""
    model, card = recover(model_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    # What the card says of how both encoders were made, so that an export of this checkpoint
    # (as --tagger, or as --sentence: see load_checkpoint) carries it into the next card.
    meta = {
        "recovered_from": str(model_dir),
        "recovered_sha256": card["sha256"],
        **card["training"],
        "skipped": card["skipped_sentences"],
    }
    save_checkpoint(model, out, meta)
