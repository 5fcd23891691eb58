"""`bigru train`, `tag-teacher` and `silver`: the tagger, and the silver tags it can train on."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from training.commands import override


def add_train(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser(
        "train", help="train a tagger: on your labelled files (--train, --dev) or EWT (--data)"
    )
    src = t.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="folder with ud-ewt/ and uner-ewt/ (UPOS + NER)")
    src.add_argument("--train", type=Path, help="labelled train file (CoNLL columns or CoNLL-U)")
    t.add_argument("--dev", type=Path, help="labelled dev file, same columns as --train")
    cols = t.add_mutually_exclusive_group()
    cols.add_argument(
        "--label-column", type=int, help="1-based label column (default: last; CoNLL-U: UPOS)"
    )
    cols.add_argument(
        "--task", action="append", help="name:N, one head per label column (repeatable)"
    )
    t.add_argument("--out", type=Path, required=True, help="run folder (checkpoint, curves)")
    t.add_argument("--epochs", type=int)
    t.add_argument("--max-minutes", type=float)
    t.add_argument("--seed", type=int)
    t.add_argument("--hidden", type=int, help="tagger GRU width per direction")
    t.add_argument("--layers", type=int, help="tagger GRU layers")
    t.add_argument("--tag-input", type=int, help="project the table to this width (0: no)")
    t.add_argument("--lex-dim", type=int, help="width of the trainable lexicon rows")
    t.add_argument("--threads", type=int, help="torch threads (1 degrades best on a busy machine)")
    t.add_argument("--init", help="fine-tune from this checkpoint (LR decays linearly)")
    t.add_argument("--lr", type=float)
    t.add_argument(
        "--aux-sentences", type=int, help="unlabeled sentences for contextual distillation"
    )
    t.add_argument("--silver", help="silver tags (.npz from `bigru silver`) to train beside gold")
    t.add_argument("--silver-ner-weight", type=float, help="weight of the silver NER loss")
    t.add_argument("--silver-batch-size", type=int, help="silver sentences per step")
    t.add_argument(
        "--select",
        choices=["sum", "upos"],
        help="best epoch by UPOS + NER F1 (sum), or by UPOS among epochs with NER F1 >= 72",
    )
    t.add_argument("--ner-floor", type=float, help="--select upos: the NER F1 an epoch needs")
    t.add_argument(
        "--ema", type=float, help="keep and evaluate an EMA of the weights with this decay"
    )
    t.add_argument("--limit", type=int, help="use only the first N train sentences (smoke runs)")
    t.set_defaults(run=lambda args: _train(t, args))


def _train(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """`bigru train`: a bad file is one line and exit status 2, before any training."""
    from training.conll import Column, ConllError, parse_task
    from training.corpus import file_corpus
    from training.model import ModelConfig
    from training.train import TrainConfig, fit, new_model, train

    cfg, mcfg = TrainConfig(), ModelConfig()
    names = (
        "epochs", "max_minutes", "seed", "limit", "threads", "aux_sentences", "init", "lr",
        "silver", "silver_ner_weight", "silver_batch_size", "select", "ner_floor", "ema",
    )  # fmt: skip
    override(cfg, args, names)
    override(mcfg, args, ("hidden", "layers", "tag_input", "lex_dim"))
    if args.data is not None:
        print(json.dumps(train(args.data, args.out, cfg, mcfg), indent=1))
        return
    if args.dev is None:
        parser.error("--train needs --dev (the best epoch is chosen on it)")
    mcfg.sent_dim = 0  # a tagger only; `bigru export --sentence` can add an encoder
    try:
        columns = None
        if args.task:
            columns = [parse_task(t) for t in args.task]
        elif args.label_column is not None:
            if args.label_column < 2:
                parser.error("--label-column: column 1 is the word; labels are in 2 or later")
            columns = [Column("tags", args.label_column)]
        from app.model.featurize import WordPiece
        from training import teacher

        wp = WordPiece.from_file(teacher.vocab_file())
        corpus = file_corpus(args.train, args.dev, columns, wp, cfg.limit)
        model = new_model(corpus, cfg, mcfg)
    except (ConllError, ValueError) as e:
        parser.exit(2, f"bigru train: error: {e}\n")
    print(json.dumps(fit(corpus, model, args.out, cfg), indent=1))
    if corpus.trees is not None:  # the files' HEAD and DEPREL: a parser on the tagger
        from training.parse import ParseConfig, add_parser

        parse = ParseConfig(epochs=min(cfg.epochs, 20), max_minutes=cfg.max_minutes, seed=cfg.seed)
        print(json.dumps(add_parser(args.out / "tagger.pt", *corpus.trees, parse), indent=1))


def add_tag_teacher(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("tag-teacher", help="fine-tune all-MiniLM-L6-v2 as a tagger (for silver)")
    s.add_argument("--data", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--epochs", type=int)
    s.add_argument("--threads", type=int)
    s.add_argument("--limit", type=int)
    s.set_defaults(run=_tag_teacher)


def _tag_teacher(args: argparse.Namespace) -> None:
    from training.silver import TeacherConfig, finetune

    tcfg = TeacherConfig()
    override(tcfg, args, ("epochs", "threads", "limit"))
    print(json.dumps(finetune(args.data, args.out, tcfg), indent=1))


def add_silver(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("silver", help="tag unlabeled corpus sentences with the tagging teacher")
    r.add_argument("--data", type=Path, required=True)
    r.add_argument("--teacher", type=Path, required=True, help="tag-teacher's teacher.pt")
    r.add_argument("--out", type=Path, required=True, help="silver .npz file")
    r.add_argument("--sentences", type=int, default=150_000)
    r.set_defaults(run=_silver)


def _silver(args: argparse.Namespace) -> None:
    from training.silver import write_silver

    write_silver(args.teacher, args.data, args.out, args.sentences)
