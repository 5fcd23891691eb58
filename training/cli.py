"""`bigru` command: train, distill, export, eval, tokeval."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="bigru", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    t = sub.add_parser("train", help="train the tagger encoder (UPOS + NER)")
    t.add_argument("--data", type=Path, required=True, help="folder with ud-ewt/ and uner-ewt/")
    t.add_argument("--out", type=Path, required=True, help="run folder (checkpoint, curves)")
    t.add_argument("--epochs", type=int)
    t.add_argument("--max-minutes", type=float)
    t.add_argument("--seed", type=int)
    t.add_argument("--hidden", type=int)
    t.add_argument("--limit", type=int, help="use only the first N train sentences (smoke runs)")

    args = p.parse_args(argv)
    if args.cmd == "train":
        from training.model import ModelConfig
        from training.train import TrainConfig, train

        cfg, mcfg = TrainConfig(), ModelConfig()
        for name in ("epochs", "max_minutes", "seed", "limit"):
            if getattr(args, name) is not None:
                setattr(cfg, name, getattr(args, name))
        if args.hidden:
            mcfg.hidden = args.hidden
        print(json.dumps(train(args.data, args.out, cfg, mcfg), indent=1))


if __name__ == "__main__":
    main()
