"""training.card: what the model card says of a sentence encoder put on the teacher's scale."""

import json
from dataclasses import asdict
from pathlib import Path

from training.card import write_card
from training.model import ModelConfig

FACTS = {"sha256": "0" * 64, "file_bytes": 1_000, "parameters": 10, "parity_max_abs_diff": 0.0}
SCALE = {"teacher_low_median": 0.2, "gap_384": 0.068, "low_median_384": 0.21, "stsb_384": 85.3}


def card_of(tmp_path: Path, meta: dict) -> tuple[dict, str]:
    ckpt = {"config": asdict(ModelConfig()), "meta": meta, "labels": {}}
    write_card(tmp_path, "bigru-en", "9.9.9", ckpt, FACTS, {"upos_acc": 95.0}, None)
    return json.loads((tmp_path / "card.json").read_text()), (tmp_path / "README.md").read_text()


def test_a_tuned_encoder_states_its_scale(tmp_path: Path) -> None:
    relate = {"pair_weight": 100.0, "epochs": 6}
    card, readme = card_of(tmp_path, {"distill": {}, "relate": relate, "relate_dev": SCALE})
    assert card["training"]["relate"] == relate and card["similarity_scale"] == SCALE
    assert "The scale is the teacher's" in readme
    assert "0.068" in readme and "median cosine of\n  0.21 (the teacher's 0.20)" in readme


def test_an_encoder_distilled_by_direction_only_says_nothing_of_a_scale(tmp_path: Path) -> None:
    card, readme = card_of(tmp_path, {"distill": {}})
    assert "similarity_scale" not in card and "scale" not in readme
