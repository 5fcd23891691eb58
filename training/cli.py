"""`bigru` command: the training, export and evaluation steps (`bigru --help` lists them)."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path


def _override(cfg: object, args: argparse.Namespace, names: tuple[str, ...]) -> None:
    """Set each config field named in `names` that was given on the command line."""
    for name in names:
        if getattr(args, name) is not None:
            setattr(cfg, name, getattr(args, name))


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
    _override(cfg, args, names)
    _override(mcfg, args, ("hidden", "layers", "tag_input", "lex_dim"))
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


def _sentence(path: Path | None) -> Path | dict | None:
    """--sentence as load_checkpoint takes it: a model folder is read back from its ONNX."""
    if path is None or not path.is_dir():
        return path
    from training.recover import recover

    model, card = recover(path)
    return {"config": model.cfg.to_dict(), "state": model.state_dict(), "meta": card["training"]}


def _add_train(sub: argparse._SubParsersAction) -> None:
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


def _add_tag_teacher(sub: argparse._SubParsersAction) -> None:
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
    _override(tcfg, args, ("epochs", "threads", "limit"))
    print(json.dumps(finetune(args.data, args.out, tcfg), indent=1))


def _add_silver(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("silver", help="tag unlabeled corpus sentences with the tagging teacher")
    r.add_argument("--data", type=Path, required=True)
    r.add_argument("--teacher", type=Path, required=True, help="tag-teacher's teacher.pt")
    r.add_argument("--out", type=Path, required=True, help="silver .npz file")
    r.add_argument("--sentences", type=int, default=150_000)
    r.set_defaults(run=_silver)


def _silver(args: argparse.Namespace) -> None:
    from training.silver import write_silver

    write_silver(args.teacher, args.data, args.out, args.sentences)


def _add_distill(sub: argparse._SubParsersAction) -> None:
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
    _override(dcfg, args, names)
    print(json.dumps(distill(args.data, args.out, dcfg, args.cache)["stsb_dev"]))


def _add_sts_tune(sub: argparse._SubParsersAction) -> None:
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


def _add_export(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("export", help="export a checkpoint to models/<name> and write its card")
    e.add_argument("--tagger", type=Path, required=True, help="tagger checkpoint (tagger.pt)")
    e.add_argument(
        "--sentence",
        type=Path,
        help="add a sentence encoder: a checkpoint (sentence.pt) or a model folder "
        "(models/bigru-en)",
    )
    e.add_argument(
        "--segmenter",
        type=Path,
        help="add a sentence segmenter: segmenter.pt of `bigru segmenter`, or a model folder "
        "(models/bigru-en) whose segmenter is copied",
    )
    e.add_argument(
        "--lexicon", type=Path, help="add the decoder's lexicon, built from this data folder's EWT"
    )
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--version", default="0.1.0")
    e.add_argument("--data", type=Path, help="evaluate on dev for the card")
    e.set_defaults(run=_export)


def _export(args: argparse.Namespace) -> None:
    from training.card import write_card
    from training.checkpoint import load_checkpoint
    from training.evaluate import evaluate
    from training.export import export

    model, ckpt = load_checkpoint(args.tagger, _sentence(args.sentence))
    facts = export(model, ckpt, args.out)
    if args.segmenter:
        from training.segmenter import add_segmenter

        facts["segmenter"] = add_segmenter(args.segmenter, args.out)
    if args.lexicon:
        from training import lexicon

        facts["lexicon"] = lexicon.write(lexicon.from_ewt(args.lexicon), args.out)
    facts["parameters"] = sum(p.numel() for p in model.parameters()) + model.table.numel()
    dev = evaluate(args.out, args.data) if args.data else None
    card = write_card(args.out, args.out.name, args.version, ckpt, facts, dev, args.tagger.parent)
    print(json.dumps({k: card[k] for k in ("sha256", "file_bytes", "parameters", "dev")}, indent=1))


def _add_eval(sub: argparse._SubParsersAction) -> None:
    v = sub.add_parser("eval", help="evaluate an exported model (ONNX) on a split")
    v.add_argument("--model", type=Path, required=True)
    v.add_argument("--data", type=Path, required=True)
    v.add_argument("--split", default="dev")
    v.add_argument("--teacher", action="store_true", help="also score the teacher on STS-B")
    v.add_argument(
        "--documents",
        action="store_true",
        help="instead: post EWT + UNER documents as raw text to the service on --model",
    )
    v.set_defaults(run=_eval)


def _eval(args: argparse.Namespace) -> None:
    from training.evaluate import evaluate

    if args.documents:
        from training.doceval import main as documents

        print(json.dumps(documents(args.model, args.data, args.split), indent=1))
        return
    result = evaluate(args.model, args.data, args.split, teacher=args.teacher)
    result.pop("skipped_sent_ids")
    print(json.dumps(result, indent=1))


def _add_segmenter(sub: argparse._SubParsersAction) -> None:
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


def _add_morph(sub: argparse._SubParsersAction) -> None:
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


def _add_parse(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("parse", help="a dependency parsing layer on a shipped tagger")
    p.add_argument("--model", type=Path, required=True, help="exported model (models/bigru-en)")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True, help="run folder (parse.pt)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--hidden", type=int, default=192, help="the parsing BiGRU, per direction")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--max-minutes", type=float, default=80.0)
    p.add_argument("--limit", type=int, help="first N train sentences only (smoke runs)")
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(run=_parse)


def _parse(args: argparse.Namespace) -> None:
    import torch

    from training.parse import ParseConfig, train_parse

    torch.set_num_threads(args.threads)
    cfg = ParseConfig(
        hidden=args.hidden, layers=args.layers, epochs=args.epochs, max_minutes=args.max_minutes
    )
    layer, labels, history, card = train_parse(args.model, args.data, cfg, args.limit)
    args.out.mkdir(parents=True, exist_ok=True)
    facts = {"config": asdict(cfg), "history": history.rows, "best_epoch": history.best_epoch,
             "recovered_from": card["sha256"]}  # fmt: skip
    torch.save(
        {"state": layer.state_dict(), "labels": labels, "facts": facts}, args.out / "parse.pt"
    )
    (args.out / "history.json").write_text(json.dumps(facts, indent=1))


def _add_lexicon(sub: argparse._SubParsersAction) -> None:
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


def _add_recover(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("recover", help="a tagger checkpoint back from an exported model's ONNX")
    c.add_argument("--model", type=Path, required=True, help="exported model directory")
    c.add_argument("--out", type=Path, required=True, help="checkpoint to write (tagger.pt)")
    c.set_defaults(run=_recover)


def _recover(args: argparse.Namespace) -> None:
    from training.recover import write_checkpoint

    write_checkpoint(args.model, args.out)


def _add_tokeval(sub: argparse._SubParsersAction) -> None:
    k = sub.add_parser("tokeval", help="word F1 of the raw-text tokenizer against EWT gold words")
    k.add_argument("--data", type=Path, required=True)
    k.add_argument("--split", default="dev")
    k.set_defaults(run=_tokeval)


def _tokeval(args: argparse.Namespace) -> None:
    from training.tokeval import main as tokeval

    tokeval(["--data", str(args.data), "--split", args.split])


_COMMANDS = (
    _add_train,
    _add_segmenter,
    _add_morph,
    _add_parse,
    _add_lexicon,
    _add_tag_teacher,
    _add_silver,
    _add_distill,
    _add_sts_tune,
    _add_export,
    _add_eval,
    _add_recover,
    _add_tokeval,
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bigru", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    for add in _COMMANDS:
        add(sub)
    args = parser.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
