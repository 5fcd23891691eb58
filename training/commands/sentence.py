"""`bigru distill` and `sts-tune`: the sentence encoder."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from training.commands import override


def add_distill(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("distill", help="distil the teacher into the sentence encoder")
    d.add_argument("--data", type=Path, required=True)
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--cache", type=Path, default=Path("cache"), help="teacher vector cache")
    d.add_argument("--epochs", type=int)
    d.add_argument("--corpus-size", type=int)
    d.add_argument("--max-minutes", type=float)
    d.add_argument("--threads", type=int)
    d.add_argument("--sent-input", type=int, help="project the table to this width (0: no)")
    d.add_argument("--sent-hidden", type=int, help="sentence GRU width per direction")
    d.set_defaults(run=_distill)


def _distill(args: argparse.Namespace) -> None:
    from training.distill import DistillConfig, distill

    dcfg = DistillConfig()
    names = ("epochs", "corpus_size", "max_minutes", "threads", "sent_input", "sent_hidden")
    override(dcfg, args, names)
    print(json.dumps(distill(args.data, args.out, dcfg, args.cache)["stsb_dev"]))


def add_sts_tune(sub: argparse._SubParsersAction) -> None:
    f = sub.add_parser("sts-tune", help="tune the sentence encoder on STS-B train (CoSENT)")
    f.add_argument("--data", type=Path, required=True)
    f.add_argument("--init", type=Path, required=True, help="distilled sentence.pt")
    f.add_argument("--out", type=Path, required=True)
    f.add_argument("--epochs", type=int, default=5)
    f.add_argument("--lr", type=float, default=1e-4)
    f.set_defaults(run=_sts_tune)


def _sts_tune(args: argparse.Namespace) -> None:
    from training.distill import sts_finetune

    result = sts_finetune(args.data, args.init, args.out, args.epochs, args.lr)
    print(json.dumps(result["stsb_dev"]))


def add_relate(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser(
        "relate", help="match the teacher's pairwise cosines, at every prefix size (Matryoshka)"
    )
    r.add_argument("--model", type=Path, required=True, help="a model folder (models/bigru-en)")
    r.add_argument("--data", type=Path, required=True)
    r.add_argument("--out", type=Path, required=True, help="run folder (sentence.pt)")
    r.add_argument("--cache", type=Path, default=Path("cache"), help="teacher vector cache")
    r.add_argument("--epochs", type=int)
    r.add_argument("--corpus-size", type=int)
    r.add_argument("--lr", type=float)
    r.add_argument("--max-minutes", type=float)
    r.add_argument("--threads", type=int)
    r.add_argument("--pair-weight", type=float, help="the STS-B train pairs' cells' weight")
    r.set_defaults(run=_relate)


def _relate(args: argparse.Namespace) -> None:
    from training.recover import recover
    from training.relate import RelateConfig, relate

    cfg = RelateConfig()
    override(
        cfg,
        args,
        ("epochs", "corpus_size", "lr", "max_minutes", "threads", "pair_weight"),
    )
    model, card = recover(args.model)
    meta = {**card["training"], "recovered_from": card["sha256"]}
    print(json.dumps(relate(model, meta, args.data, args.out, cfg, args.cache)["best"]))
