"""`bigru segmenter`, `morph`, `parse` and `lexicon`: what is trained or counted beside a
shipped tagger, which stays as is."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_segmenter(sub: argparse._SubParsersAction) -> None:
    g = sub.add_parser("segmenter", help="train the sentence segmenter on EWT's running text")
    g.add_argument("--data", type=Path, required=True)
    g.add_argument("--out", type=Path, required=True, help="run folder (segmenter.pt)")
    g.add_argument("--epochs", type=int, default=10)
    g.add_argument("--hidden", type=int, default=64, help="its BiGRU, per direction")
    g.add_argument("--input", type=int, default=32, help="the table's projection it reads")
    g.add_argument("--per-source", type=int, default=4000, help="corpus lines per source")
    g.add_argument("--threads", type=int, default=1)
    g.set_defaults(run=_segmenter)


def _segmenter(args: argparse.Namespace) -> None:
    import torch

    from training.segmenter import SegmenterConfig, save_segmenter, train_segmenter

    torch.set_num_threads(args.threads)
    cfg = SegmenterConfig(epochs=args.epochs, hidden=args.hidden, input=args.input)
    model, facts = train_segmenter(args.data, cfg, args.per_source)
    save_segmenter(model, facts, args.out / "segmenter.pt")


def add_morph(sub: argparse._SubParsersAction) -> None:
    m = sub.add_parser("morph", help="XPOS, UFeats and lemma heads on a shipped tagger")
    m.add_argument("--model", type=Path, required=True, help="exported model (models/bigru-en)")
    m.add_argument("--data", type=Path, required=True)
    m.add_argument("--out", type=Path, required=True, help="run folder (tagger.pt)")
    m.add_argument("--epochs", type=int, default=20)
    m.add_argument("--hidden", type=int, default=64, help="the morphology BiGRU, per direction")
    m.add_argument("--input", type=int, default=64, help="its input projection (0: none)")
    m.add_argument("--threads", type=int, default=2)
    m.set_defaults(run=_morph)


def _morph(args: argparse.Namespace) -> None:
    import torch

    from training.checkpoint import save_checkpoint
    from training.examples import EWT_LABELS
    from training.morph import MorphConfig, train_morph

    torch.set_num_threads(args.threads)
    cfg = MorphConfig(hidden=args.hidden, input=args.input, epochs=args.epochs)
    model, run = train_morph(args.model, args.data, cfg)
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {**run["card"]["training"], "skipped": run["card"]["skipped_sentences"]}
    meta["morph"] = run["facts"]
    save_checkpoint(model, args.out / "tagger.pt", meta, {**EWT_LABELS, **run["labels"]})


def add_parse(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("parse", help="a dependency parsing layer on a shipped tagger")
    p.add_argument("--model", type=Path, required=True, help="exported model (models/bigru-en)")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="run folder (tagger.pt)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--hidden", type=int, default=192, help="the parsing BiGRU, per direction")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--input", type=int, default=256, help="its input projection")
    p.add_argument("--lr", type=float, default=2e-3, help="the one-cycle schedule's peak")
    p.add_argument("--max-minutes", type=float, default=80.0)
    p.add_argument("--patience", type=int, help="stop after this many epochs without a better LAS")
    p.add_argument("--limit", type=int, help="first N train sentences only (smoke runs)")
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(run=_parse)


def _parse(args: argparse.Namespace) -> None:
    import torch

    from training.checkpoint import save_checkpoint
    from training.parse import ParseConfig, train_parse

    torch.set_num_threads(args.threads)
    cfg = ParseConfig(
        hidden=args.hidden, layers=args.layers, input=args.input, lr=args.lr, epochs=args.epochs,
        max_minutes=args.max_minutes, patience=args.patience,
    )  # fmt: skip
    model, labels, run = train_parse(args.model, args.data, cfg, args.limit)
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {**run["card"]["training"], "skipped": run["card"]["skipped_sentences"]}
    meta["parse"] = run["facts"]
    save_checkpoint(model, args.out / "tagger.pt", meta, labels)
    (args.out / "history.json").write_text(json.dumps(run["facts"], indent=1))


def add_lexicon(sub: argparse._SubParsersAction) -> None:
    x = sub.add_parser(
        "lexicon", help="the decoder's lexicon of XPOS, UFeats and lemmas from EWT train"
    )
    x.add_argument("--model", type=Path, required=True, help="exported model (models/bigru-en)")
    x.add_argument("--data", type=Path, required=True)
    x.add_argument("--weight", type=float, default=None, help="its weight against the heads")
    x.add_argument("--floor", type=float, default=None, help="what an unseen tag's share is")
    x.set_defaults(run=_lexicon)


def _lexicon(args: argparse.Namespace) -> None:
    from training import lexicon

    weight = lexicon.WEIGHT if args.weight is None else args.weight
    floor = lexicon.FLOOR if args.floor is None else args.floor
    facts = lexicon.write(lexicon.from_ewt(args.data, weight, floor), args.model)
    card_path = args.model / "card.json"  # a folder with a card keeps it true to the new file
    if card_path.is_file():
        card = json.loads(card_path.read_text())
        card["lexicon"] = facts
        card_path.write_text(json.dumps(card, indent=1))
    print(json.dumps(facts, indent=1))
