"""Checkpoints: a model's config, weights (less the teacher's table), labels and run facts."""

from __future__ import annotations

from pathlib import Path

import torch

from training import teacher
from training.examples import EWT_LABELS
from training.model import BiGRUModel, ModelConfig

SENTENCE_META = ("distill", "corpus_size", "sts_finetune", "stsb_dev", "relate", "relate_dev")


def save_checkpoint(
    model: BiGRUModel, path: Path, meta: dict, labels: dict[str, list[str]] = EWT_LABELS
) -> None:
    """`labels`: each head's label list, by head name."""
    state = {k: v for k, v in model.state_dict().items() if k != "table"}  # table: from the teacher
    torch.save(
        {"config": model.cfg.to_dict(), "state": state, "meta": meta, "labels": labels}, path
    )


def load_checkpoint(path: Path, sentence: Path | dict | None = None) -> tuple[BiGRUModel, dict]:
    """A model from a tagger checkpoint, with the sentence encoder of another one if given
    (a checkpoint file, or one already loaded)."""
    ckpt = torch.load(path, weights_only=False)
    config, state = ckpt["config"], ckpt["state"]
    if sentence is not None:
        other = sentence if isinstance(sentence, dict) else torch.load(sentence, weights_only=False)
        # the sentence encoder's shape comes with it (a checkpoint without one: the defaults)
        sent_fields = [k for k in ModelConfig.__dataclass_fields__ if k.startswith("sent_")]
        defaults = ModelConfig()
        shape = {k: other["config"].get(k, getattr(defaults, k)) for k in sent_fields}
        config = {**config, **shape}
        ckpt = {**ckpt, "config": config}
        state = {k: v for k, v in state.items() if not k.startswith("sent")}
        state |= {k: v for k, v in other["state"].items() if k.startswith("sent")}
        # how the sentence encoder was made comes with it; the rest is the tagger's
        kept = {k: v for k, v in ckpt["meta"].items() if k not in SENTENCE_META}
        ckpt["meta"] = kept | {k: v for k, v in other["meta"].items() if k in SENTENCE_META}
    model = BiGRUModel(ModelConfig(**config), teacher.input_table())
    missing, unexpected = model.load_state_dict(state, strict=False)
    if set(missing) != {"table"} or unexpected:  # the table comes from the teacher, not the file
        raise ValueError(f"{path}: missing {missing}, unexpected {unexpected}")
    return model.eval(), ckpt
