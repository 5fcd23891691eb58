"""`bigru export`, `eval`, `recover` and `tokeval`: a model folder made from checkpoints, read
back, and scored (its heads and encoder, or the tokenizer the service runs)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_export(sub: argparse._SubParsersAction) -> None:
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


def _sentence(path: Path | None) -> Path | dict | None:
    """--sentence as load_checkpoint takes it: a model folder is read back from its ONNX."""
    if path is None or not path.is_dir():
        return path
    from training.recover import recover

    model, card = recover(path)
    return {"config": model.cfg.to_dict(), "state": model.state_dict(), "meta": card["training"]}


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


def add_eval(sub: argparse._SubParsersAction) -> None:
    v = sub.add_parser("eval", help="evaluate an exported model (ONNX) on a split")
    v.add_argument("--model", type=Path, required=True)
    v.add_argument("--data", type=Path, required=True)
    v.add_argument("--split", default="dev")
    v.add_argument("--teacher", action="store_true", help="also score the teacher on STS-B")
    v.add_argument(
        "--parse-errors",
        action="store_true",
        help="instead: where LAS is lost, by relation and sentence length",
    )
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
    if args.parse_errors:
        from training.evaluate import parse_errors

        print(parse_errors(args.model, args.data, args.split))
        return
    result = evaluate(args.model, args.data, args.split, teacher=args.teacher)
    result.pop("skipped_sent_ids")
    print(json.dumps(result, indent=1))


def add_recover(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("recover", help="a tagger checkpoint back from an exported model's ONNX")
    c.add_argument("--model", type=Path, required=True, help="exported model directory")
    c.add_argument("--out", type=Path, required=True, help="checkpoint to write (tagger.pt)")
    c.set_defaults(run=_recover)


def _recover(args: argparse.Namespace) -> None:
    from training.recover import write_checkpoint

    write_checkpoint(args.model, args.out)


def add_tokeval(sub: argparse._SubParsersAction) -> None:
    k = sub.add_parser("tokeval", help="word F1 of the raw-text tokenizer against EWT gold words")
    k.add_argument("--data", type=Path, required=True)
    k.add_argument("--split", default="dev")
    k.set_defaults(run=_tokeval)


def _tokeval(args: argparse.Namespace) -> None:
    from training.tokeval import main as tokeval

    tokeval(["--data", str(args.data), "--split", args.split])
