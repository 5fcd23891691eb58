"""Tag-path candidates side by side: FLOPs per piece and raw ORT speed, in interleaved rounds.

python -m bench.probes.tagpath NAME=MODEL_DIR [NAME=git:REV ...] [--rounds 5] [--out F.json]
"""

import argparse
import statistics
from contextlib import ExitStack
from pathlib import Path

from app.model.backend import OnnxBackend
from bench import DATA, MODEL, ROOT, ab, report, runtimes
from bench.probes import flops


def _model_dir(spec: str, stack: ExitStack) -> Path:
    """A model folder, or the shipped one at a git revision (`git:REV`) in a temporary worktree."""
    if spec.startswith("git:"):
        return stack.enter_context(ab.worktree(spec[4:])) / MODEL.relative_to(ROOT)
    return Path(spec).resolve()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help="NAME=MODEL_DIR or NAME=git:REV")
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=3.0, help="per model per round")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    args = p.parse_args(argv)
    corpus = runtimes.load_corpus(args.data, MODEL / "vocab.txt")
    batches = runtimes.length_sorted_batches(corpus.features, args.batch_size)
    with ExitStack() as stack:
        specs = dict(m.split("=", 1) for m in args.models)
        dirs = {name: _model_dir(spec, stack) for name, spec in specs.items()}
        runs = {n: runtimes.ort_runner(OnnxBackend(d, ["cpu"], 1), "tag") for n, d in dirs.items()}
        mflop = {n: flops.count_flops(d / "model.onnx")["per_path"]["tag"]["piece"] / 1e6
                 for n, d in dirs.items()}  # fmt: skip
        rates: dict[str, list[float]] = {name: [] for name in dirs}
        for r in range(args.rounds):
            for name, run in runs.items():
                rate = runtimes.measure(run, batches, args.seconds, seed=r)
                rates[name].append(rate.as_dict()["pieces_per_s"])
            report.log("tagpath", f"round {r + 1}/{args.rounds}: "
                       + ", ".join(f"{n} {v[-1]:,.0f}" for n, v in rates.items()))  # fmt: skip
    base = next(iter(dirs))
    first = statistics.median(rates[base])
    result = {name: {"mflop_per_piece": mflop[name], "pieces_per_s": statistics.median(v),
                     "rounds": v, f"speed_vs_{base}": statistics.median(v) / first}
              for name, v in rates.items()}  # fmt: skip
    header = f"model | MFLOP/piece | raw ORT pieces/s, B={args.batch_size} | vs {base}"
    rows = [[n, f"{r['mflop_per_piece']:.2f}", f"{r['pieces_per_s']:,.0f}",
             f"{r[f'speed_vs_{base}']:.2f}x"] for n, r in result.items()]  # fmt: skip
    print("\n".join(report.table(header, rows)))
    if args.out is not None:
        report.write_json(args.out, result)


if __name__ == "__main__":
    main()
