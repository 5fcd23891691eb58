"""The `bigru` subcommands by group; each module adds its commands' parsers (`add_*`), and each
parser runs its command."""

from __future__ import annotations

import argparse


def override(cfg: object, args: argparse.Namespace, names: tuple[str, ...]) -> None:
    """Set each config field named in `names` that was given on the command line."""
    for name in names:
        if getattr(args, name) is not None:
            setattr(cfg, name, getattr(args, name))
