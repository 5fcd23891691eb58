"""A/B: this checkout's service against another git revision's, in alternating rounds.

A shared machine's speed drifts within the hour, so a before/after claim from two runs taken
at different times says little. Here the two services take turns, A B A B ..., each a fresh
`python -m app` on the same load (bench/load.py, EWT dev sentences), and each side's median
over the rounds is compared.

    python -m bench.ab --base aea0dda --route embed --clients 16 --per-request 32 --rounds 5
    python -m bench.ab --base HEAD --route tag --clients 32 --per-request 1 \
        --env BIGRU_PROCESSES=2

The base revision is checked out in a temporary git worktree and runs with this checkout's
Python environment; each side serves the model of its own tree unless `--model-dir` is given.
`--env KEY=VALUE` (repeatable) goes to both sides' servers. The load is `wrk` where it is on
PATH (whole seconds), else bench/load.py's stdlib client.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import runtimes, service

ROOT = Path(__file__).resolve().parent.parent
MODEL = Path("models") / "bigru-en"


@contextmanager
def worktree(revision: str) -> Iterator[Path]:
    """`revision` checked out (detached) in a temporary git worktree, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="bigru-ab-") as tmp:
        tree = Path(tmp) / "tree"
        git = ["git", "-C", str(ROOT)]
        subprocess.run([*git, "worktree", "add", "--detach", "-q", str(tree), revision], check=True)
        try:
            yield tree
        finally:
            subprocess.run([*git, "worktree", "remove", "--force", str(tree)], check=False)


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over one side's rounds, and every round's sentences/s."""
    return {
        "rounds": len(rounds),
        "sentences_per_s": statistics.median(r["sentences_per_s"] for r in rounds),
        "requests_per_s": statistics.median(r["requests_per_s"] for r in rounds),
        "p50_ms": statistics.median(r["latency_ms"]["p50"] or 0.0 for r in rounds),
        "p99_ms": statistics.median(r["latency_ms"]["p99"] or 0.0 for r in rounds),
        "server_cpu": statistics.median(r["server"]["cpu"] or 0.0 for r in rounds),
        "each_sentences_per_s": [round(r["sentences_per_s"], 1) for r in rounds],
    }


def compare(
    args: argparse.Namespace, trees: dict[str, Path], texts: list[str], workdir: Path
) -> dict[str, Any]:
    rounds: dict[str, list[dict[str, Any]]] = {side: [] for side in trees}
    for i in range(args.rounds):
        for side, tree in trees.items():
            model_dir = args.model_dir or tree / MODEL
            log = workdir / f"server-{side}.log"
            with service.server(model_dir, args.env, log, cwd=tree) as (base, pid):
                r = service.load_run(
                    base,
                    pid,
                    args.route,
                    args.clients,
                    texts,
                    args.warmup,
                    args.seconds,
                    args.per_request,
                )
            rounds[side].append(r)
            print(
                f"round {i + 1}/{args.rounds} {side:4} {r['sentences_per_s']:>8,.0f} sent/s "
                f"p99 {r['latency_ms']['p99'] or 0:6.1f} ms errors {r['errors']} ({r['tool']})",
                flush=True,
            )
    return {side: summarize(rs) for side, rs in rounds.items()}


def _env(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {value!r}")
    return key, val


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", required=True, help="git revision to compare against (A)")
    p.add_argument("--route", choices=sorted(service.ROUTES), default="embed")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--per-request", type=int, default=32, help="sentences per request")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=8.0, help="measured window per run")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--texts", type=Path, help="JSON list of sentences instead of EWT dev")
    p.add_argument("--model-dir", type=Path, help="one model for both sides")
    p.add_argument("--out", type=Path, help="write the result as JSON here")
    p.add_argument(
        "--env",
        type=_env,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment for both sides' servers (repeatable), e.g. BIGRU_PROCESSES=2",
    )
    args = p.parse_args(argv)
    args.env = dict(args.env)
    if args.model_dir is not None:
        args.model_dir = args.model_dir.resolve()
    return args


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    with worktree(args.base) as base_tree, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.texts is not None:
            texts = json.loads(args.texts.read_text(encoding="utf-8"))
        else:
            texts = runtimes.load_corpus(args.data, ROOT / MODEL / "vocab.txt").texts
        result = compare(args, {"base": base_tree, "head": ROOT}, texts, workdir)
    result["setup"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    for side in ("base", "head"):
        s = result[side]
        print(
            f"{side:4} ({args.base if side == 'base' else 'this checkout'}): median "
            f"{s['sentences_per_s']:,.0f} sent/s, p99 {s['p99_ms']:.1f} ms; "
            f"rounds {s['each_sentences_per_s']}"
        )
    ratio = result["head"]["sentences_per_s"] / max(result["base"]["sentences_per_s"], 1e-9)
    print(f"head / base: {ratio:.2f}")
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
