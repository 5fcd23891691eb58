"""A/B: this checkout's service against another git revision's, in alternating rounds.

python -m bench.ab --base aea0dda --route embed --clients 16 --per-request 32 --rounds 5
"""

import argparse
import itertools
import json
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import DATA, MODEL, ROOT, report, runtimes, service
from bench.targets import dig


@contextmanager
def worktree(revision: str) -> Iterator[Path]:
    """`revision` checked out (detached) in a temporary git worktree, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="bigru-ab-") as tmp:
        tree, git = Path(tmp) / "tree", ["git", "-C", str(ROOT), "worktree"]
        subprocess.run([*git, "add", "--detach", "-q", str(tree), revision], check=True)
        try:
            yield tree
        finally:
            subprocess.run([*git, "remove", "--force", str(tree)], check=False)


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over one side's rounds, and every round's sentences/s."""

    def median(*keys: str) -> float:
        return statistics.median(dig(r, *keys) or 0.0 for r in rounds)

    return {"rounds": len(rounds), "sentences_per_s": median("sentences_per_s"),
            "requests_per_s": median("requests_per_s"), "p50_ms": median("latency_ms", "p50"),
            "p99_ms": median("latency_ms", "p99"), "server_cpu": median("server", "cpu"),
            "each_sentences_per_s": [round(r["sentences_per_s"], 1) for r in rounds]}  # fmt: skip


def compare(args: argparse.Namespace, trees: dict[str, Path], sent: list[str], tmp: Path) -> dict:
    rounds: dict[str, list[dict[str, Any]]] = {side: [] for side in trees}
    for i, (side, tree) in itertools.product(range(args.rounds), trees.items()):
        report.log("ab", f"round {i + 1}/{args.rounds}: {side}")
        model_dir, log = args.model_dir or tree / MODEL.relative_to(ROOT), tmp / f"{side}.log"
        heads = getattr(args, f"heads_{side}")
        extra = None if heads is None else {"heads": [h for h in heads.split(",") if h]}
        module = getattr(args, f"module_{side}")
        env = args.env | getattr(args, f"env_{side}")
        with service.server(model_dir, env, log, module, cwd=tree) as srv:
            window = (args.warmup, args.seconds)
            run = srv.load(args.route, args.clients, sent, window, args.per_request, extra)
            rounds[side].append(run)
    return {side: summarize(rs) for side, rs in rounds.items()}


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", required=True, help="git revision to compare against (A)")
    p.add_argument("--route", choices=sorted(service.ROUTES), default="embed")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--per-request", type=int, default=32, help="sentences per request")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=8.0, help="measured window per run")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--texts", type=Path, help="JSON list of sentences instead of EWT dev")
    p.add_argument("--model-dir", type=Path, help="one model for both sides")
    for side in ("base", "head"):  # with --base HEAD: one checkout, two sets of heads
        p.add_argument(f"--heads-{side}", help=f"/tag's heads on {side}: upos,ner ('' for none)")
    for side in ("base", "head"):  # e.g. --base HEAD --module-head bench.granian_app
        p.add_argument(f"--module-{side}", default="app", help=f"`python -m` this on {side}")
    p.add_argument("--out", type=Path, help="write the result as JSON here")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="both servers' environment (repeatable): BIGRU_PROCESSES=2")  # fmt: skip
    for side in ("base", "head"):  # e.g. --base HEAD --env-head BIGRU_MAX_PADDING=1.5
        p.add_argument(f"--env-{side}", action="append", default=[], metavar="KEY=VALUE",
                       help=f"{side}'s server only, over --env (repeatable)")  # fmt: skip
    args = p.parse_args(argv)
    for name in ("env", "env_base", "env_head"):
        pairs = getattr(args, name)
        if bad := [e for e in pairs if "=" not in e[1:]]:
            p.error(f"--{name.replace('_', '-')}: expected KEY=VALUE, got {bad}")
        setattr(args, name, dict(e.split("=", 1) for e in pairs))
    args.model_dir = args.model_dir and args.model_dir.resolve()
    return args


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    if args.texts is not None:
        sent = json.loads(args.texts.read_text(encoding="utf-8"))
    else:
        sent = runtimes.load_corpus(args.data, MODEL / "vocab.txt").texts
    with worktree(args.base) as base_tree, tempfile.TemporaryDirectory() as tmp:
        result = compare(args, {"base": base_tree, "head": ROOT}, sent, Path(tmp))
    result["setup"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    for side, name in (("base", args.base), ("head", "this checkout")):
        s = result[side]
        report.log("ab", f"{side:4} ({name}): median {s['sentences_per_s']:,.0f} sent/s, p99 "
                   f"{s['p99_ms']:.1f} ms; rounds {s['each_sentences_per_s']}")  # fmt: skip
    ratio = result["head"]["sentences_per_s"] / max(result["base"]["sentences_per_s"], 1e-9)
    report.log("ab", f"head / base: {ratio:.2f}")
    if args.out is not None:
        report.write_json(args.out, result)


if __name__ == "__main__":
    main()
