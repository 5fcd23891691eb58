"""`bigru` command: the training, export and evaluation steps (`bigru --help` lists them)."""

from __future__ import annotations

import argparse

from training.commands import folder, layers, sentence, tagger

_COMMANDS = (
    tagger.add_train,
    layers.add_segmenter,
    layers.add_morph,
    layers.add_parse,
    layers.add_lexicon,
    tagger.add_tag_teacher,
    tagger.add_silver,
    sentence.add_distill,
    sentence.add_sts_tune,
    sentence.add_relate,
    folder.add_export,
    folder.add_eval,
    folder.add_recover,
    folder.add_tokeval,
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
