"""spaCy's en_core_web_sm as the tagger to beat, by a stand-in of the same architecture.

The sm package is not installable here (model hubs are out of reach; PyPI has spaCy only), but
its speed is its architecture's, not its weights'. So the stand-in starts from the config
spaCy itself writes for a CPU tagger + NER (`spacy init config --lang en --pipeline tagger,ner
--optimize efficiency`) and takes on where en_core_web_sm 3.8's published config.cfg differs
(`SM_OVERRIDES`), for the components /tag matches: tok2vec, tagger and ner (sm also parses and
lemmatizes: not counted). Its weights are initialized, not trained: labels come from a few EWT
train sentences (UPOS; PER, ORG, LOC). Greedy NER takes one transition per token and the tagger
one softmax, so untrained weights do the same work as trained ones.

Measured in this process on one thread, as spaCy runs: EWT dev sentences given as gold words
(`Doc(nlp.vocab, words=...)`, fresh docs each pass, made outside the timed region) through
`nlp.pipe(docs, batch_size=nlp.batch_size)`, cycling until the time budget is spent.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from training.data import load_tagging, read_conllu

EWT_DEV = Path("ud-ewt") / "en_ewt-ud-dev.conllu"
INIT_EXAMPLES = 500  # EWT train sentences that give the label sets (all 17 UPOS tags)

_SM_EMBED = {
    "@architectures": "spacy.MultiHashEmbed.v2",
    "width": 96,
    "attrs": ["NORM", "PREFIX", "SUFFIX", "SHAPE"],
    "rows": [5000, 1000, 2500, 2500],
    "include_static_vectors": False,
}
_SM_ENCODE = {
    "@architectures": "spacy.MaxoutWindowEncoder.v2",
    "width": 96,
    "depth": 4,
    "window_size": 1,
    "maxout_pieces": 3,
}
SM_OVERRIDES = [
    "ner has a tok2vec of its own (HashEmbedCNN: MultiHashEmbed width 96 on NORM, PREFIX, "
    "SUFFIX, SHAPE, rows 5000/1000/2500/2500; MaxoutWindowEncoder width 96, depth 4, window 1, "
    "maxout 3) instead of listening to the shared one",
    "the shared tok2vec also embeds SPACY and IS_SPACE (50 rows each)",
    "nlp.batch_size 256",
]


def init_config() -> Any:
    """The config `spacy init config --lang en --pipeline tagger,ner --optimize efficiency`
    writes (CPU)."""
    from spacy.cli.init_config import init_config as make

    return make(lang="en", pipeline=["tagger", "ner"], optimize="efficiency", gpu=False)


def sm_config(config: Any) -> Any:
    """`config` with en_core_web_sm 3.8's differences (`SM_OVERRIDES`) applied."""
    config = copy.deepcopy(config)
    embed = config["components"]["tok2vec"]["model"]["embed"]
    embed["attrs"] = [*embed["attrs"], "SPACY", "IS_SPACE"]
    embed["rows"] = [*embed["rows"], 50, 50]
    config["components"]["ner"]["model"]["tok2vec"] = {
        "@architectures": "spacy.Tok2Vec.v2",
        "embed": dict(_SM_EMBED),
        "encode": dict(_SM_ENCODE),
    }
    config["nlp"]["batch_size"] = 256
    return config


def build(config: Any, data_dir: Path, examples: int = INIT_EXAMPLES) -> Any:
    """The pipeline of `config`, initialized on the first `examples` joined EWT train sentences
    (their UPOS tags and UNER entities give the label sets)."""
    import spacy
    from spacy.tokens import Doc
    from spacy.training import Example

    spacy.require_cpu()
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    sentences, _ = load_tagging(data_dir, "train")
    gold = [
        Example(
            Doc(nlp.vocab, words=s.words),
            Doc(nlp.vocab, words=s.words, tags=s.upos, ents=s.ner),
        )
        for s in sentences[:examples]
    ]
    nlp.initialize(lambda: gold)
    return nlp


def dev_words(data_dir: Path, limit: int | None = None) -> list[list[str]]:
    """EWT dev sentences as their gold words."""
    return [s.words for s in read_conllu(data_dir / EWT_DEV)[:limit] if s.words]


def measure(nlp: Any, sentences: list[list[str]], seconds: float) -> dict[str, Any]:
    """Words and sentences per second through `nlp.pipe`, and the cores it kept busy."""
    from spacy.tokens import Doc

    words = sentences_done = passes = 0
    wall = cpu = 0.0
    while wall < seconds or passes == 0:
        docs = [Doc(nlp.vocab, words=w) for w in sentences]
        t0, c0 = time.perf_counter(), time.process_time()
        for doc in nlp.pipe(docs, batch_size=nlp.batch_size):
            words += len(doc)
            sentences_done += 1
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
        passes += 1
    return {
        "batch_size": nlp.batch_size,
        "passes": passes,
        "words": words,
        "sentences": sentences_done,
        "seconds": wall,
        "words_per_s": words / wall,
        "sentences_per_s": sentences_done / wall,
        "cores": cpu / wall,
    }


def labels(nlp: Any) -> dict[str, Any]:
    return {
        "tagger": len(nlp.get_pipe("tagger").labels),
        "ner": sorted(nlp.get_pipe("ner").labels),
    }


def phase(results: dict[str, Any], plan: Any, data: Path, log: Callable[[str, str], None]) -> None:
    """The en_core_web_sm stand-in, then spaCy's `init config` as written, in this process."""
    import spacy

    base = init_config()
    sentences = dev_words(data, plan.spacy_sentences)
    section = results["spacy"] = {
        "version": spacy.__version__,
        "sm_overrides": SM_OVERRIDES,
        "init_examples": INIT_EXAMPLES,
    }
    for key, config in (("stand_in", sm_config(base)), ("init_config", base)):
        nlp = build(config, data)
        section[key] = rate = measure(nlp, sentences, plan.spacy_s)
        if key == "stand_in":
            section["labels"] = labels(nlp)
            section["config"] = nlp.config.to_str()
        log(
            "spacy",
            f"{key:11} {rate['words_per_s']:>8,.0f} words/s {rate['sentences_per_s']:>6,.0f} "
            f"sent/s batch {rate['batch_size']} on {rate['cores']:.2f} cores",
        )
