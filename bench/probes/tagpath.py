"""Tag-path candidates side by side: FLOPs per piece and raw ONNX Runtime speed at batch 32.

    python -m bench.probes.tagpath NAME=MODEL_DIR [NAME=MODEL_DIR ...] [--rounds 5] [--out F.json]

A name may also be `NAME=git:REV` for the shipped model at a git revision (its model folder is
read out of history into a temporary directory). Each round times every model once, in turn,
on the same length-sorted batches of EWT dev sentences (the service's `OnnxBackend`, one
intra-op thread, the tagger only), and each model's median over the rounds is reported: this
machine's speed drifts, so only runs interleaved in one sitting compare.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

from app.model.backend import OnnxBackend
from bench import runtimes
from bench.probes import flops

ROOT = Path(__file__).resolve().parents[2]
MODEL = "models/bigru-en"


def _model_dir(spec: str, tmp: Path) -> Path:
    """A model folder, or the shipped one at a git revision (`git:REV`), checked out to tmp."""
    if not spec.startswith("git:"):
        return Path(spec).resolve()
    rev, out = spec[4:], tmp / spec[4:].replace("/", "_")
    out.mkdir(parents=True)
    listed = subprocess.run(
        ["git", "ls-tree", "--name-only", f"{rev}:{MODEL}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if listed.returncode != 0:
        raise FileNotFoundError(f"{rev}:{MODEL}: {listed.stderr.strip()}")
    for name in listed.stdout.split():  # every file of the folder: what a version ships varies
        shown = subprocess.run(
            ["git", "show", f"{rev}:{MODEL}/{name}"], cwd=ROOT, capture_output=True, check=True
        )
        (out / name).write_bytes(shown.stdout)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help="NAME=MODEL_DIR or NAME=git:REV")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=3.0, help="per model per round")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    args = p.parse_args(argv)
    corpus = runtimes.load_corpus(args.data, ROOT / MODEL / "vocab.txt")
    batches = runtimes.length_sorted_batches(corpus.features, args.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        dirs = {
            name: _model_dir(spec, Path(tmp))
            for name, spec in (m.split("=", 1) for m in args.models)
        }
        runners = {
            name: runtimes.ort_runner(OnnxBackend(d, ["cpu"], 1), "tag") for name, d in dirs.items()
        }
        mflop = {
            name: flops.count_flops(d / "model.onnx")["per_path"]["tag"]["piece"] / 1e6
            for name, d in dirs.items()
        }
        rates: dict[str, list[float]] = {name: [] for name in dirs}
        for r in range(args.rounds):
            for name, run in runners.items():
                rate = runtimes.measure(run, batches, args.seconds, seed=r)
                rates[name].append(rate.as_dict()["pieces_per_s"])
            print(
                f"round {r + 1}/{args.rounds}: "
                + ", ".join(f"{n} {v[-1]:,.0f}" for n, v in rates.items()),
                flush=True,
            )
    first = next(iter(dirs))
    result = {
        name: {
            "mflop_per_piece": mflop[name],
            "pieces_per_s": statistics.median(rates[name]),
            "rounds": rates[name],
            f"speed_vs_{first}": statistics.median(rates[name]) / statistics.median(rates[first]),
        }
        for name in dirs
    }
    print(f"| model | MFLOP/piece | raw ORT pieces/s, B={args.batch_size} | vs {first} |")
    print("|---|---|---|---|")
    for name, row in result.items():
        print(
            f"| {name} | {row['mflop_per_piece']:.2f} | {row['pieces_per_s']:,.0f} | "
            f"{row[f'speed_vs_{first}']:.2f}x |"
        )
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
