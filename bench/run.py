"""`python -m bench.run [--quick]`: every measurement in one run, then results, summary and plots.

Order matters on a small machine: the BLAS peak, the FLOP count and ORT first; the service
phases next, each server alone on the machine but for its load client; spaCy in process after
them; torch last, so its thread pools are never warm while something else is timed.
Writes bench/results/<date>-<host>.json (-quick for --quick), .md and -*.png.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import socket
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from app.config import Settings
from bench import engine, report, single, spacy_sm, wrk
from bench.machine import git_version, machine_info
from bench.phases import (
    log,
    phase_ceiling,
    phase_flops,
    phase_ort,
    phase_peak,
    phase_peer,
    phase_service,
    phase_torch,
)
from bench.plan import FULL, QUICK, Plan
from bench.plots import plot
from bench.targets import threshold_text, verdict
from bench.texts import novel_texts

ROOT = Path(__file__).resolve().parent.parent


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny budgets: a smoke test (~1 min)")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument(
        "--ckpt", type=Path, help="PyTorch tagger checkpoint (default: read back from model.onnx)"
    )
    p.add_argument("--sentence-ckpt", type=Path, help="its sentence encoder, as for export")
    p.add_argument("--model-dir", type=Path, default=ROOT / "models" / "bigru-en")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    p.add_argument("--cache", type=Path, default=ROOT / "cache" / "bench", help="teacher export")
    p.add_argument(
        "--load-tool",
        choices=["auto", "wrk", "raw", "httpx"],
        default="auto",
        help="HTTP load: wrk, or bench.load's raw asyncio or httpx client (auto: wrk if on PATH)",
    )
    args = p.parse_args(argv)
    if args.load_tool == "auto":
        args.load_tool = "wrk" if wrk.available() else "raw"
    elif args.load_tool == "wrk" and not wrk.available():
        raise SystemExit("bench: --load-tool wrk, but wrk is not on PATH (apt-get install wrk)")
    args.model_dir = args.model_dir.resolve()
    if not (args.model_dir / "model.onnx").is_file():
        raise SystemExit(f"bench: no model.onnx in {args.model_dir} (--model-dir)")
    return args


def _start(args: argparse.Namespace, plan: Plan, settings: Settings) -> dict[str, Any]:
    """The results dict before any phase: what ran where, and notes on the conditions."""
    results: dict[str, Any] = {
        "meta": {
            "date": datetime.date.today().isoformat(),
            "host": socket.gethostname(),
            "quick": args.quick,
            "git": git_version(),
            "model_dir": str(args.model_dir),
            "ckpt": str(args.ckpt) if args.ckpt else "recovered from model.onnx",
            "sentence_ckpt": str(args.sentence_ckpt) if args.sentence_ckpt else None,
            "data": str(args.data),
        },
        "machine": machine_info(),
        "plan": asdict(plan),
        "service_settings": settings.model_dump(mode="json", exclude={"api_key"}),
        "notes": [],
        "errors": {},
    }
    if args.quick:
        results["notes"].append("--quick: tiny budgets, a smoke test; the numbers mean little")
    if results["machine"]["loadavg_start"] > 0.5:
        results["notes"].append(
            f"the machine was busy at start (load average "
            f"{results['machine']['loadavg_start']:.2f}): numbers are low"
        )
    return results


def _phases(
    results: dict[str, Any],
    plan: Plan,
    args: argparse.Namespace,
    settings: Settings,
    corpus: engine.Corpus,
    workdir: Path,
) -> list[tuple[str, Callable[[], None]]]:
    texts_file = workdir / "texts.json"
    texts_file.write_text(json.dumps(corpus.texts))
    model_dir, texts = args.model_dir, corpus.texts

    def novel() -> None:
        single.phase_single(
            results,
            plan,
            settings,
            texts_file,
            novel_texts(args.data, plan.novel_texts),
            workdir,
            log,
        )

    return [
        ("peak", lambda: phase_peak(results, plan)),
        ("flops", lambda: phase_flops(results, model_dir)),
        ("ort", lambda: phase_ort(results, plan, model_dir, corpus)),
        ("service", lambda: phase_service(results, plan, settings, texts_file, workdir)),
        ("ceiling", lambda: phase_ceiling(results, plan, settings, texts, workdir)),
        ("single", novel),
        (
            "processes",
            lambda: single.phase_processes(results, plan, settings, texts_file, workdir, log),
        ),
        ("spacy", lambda: spacy_sm.phase(results, plan, args.data, log)),
        (
            "torch",
            lambda: phase_torch(results, plan, model_dir, args.ckpt, args.sentence_ckpt, corpus),
        ),
        (
            "peer",
            lambda: phase_peer(results, plan, args.cache, texts, settings, texts_file, workdir),
        ),
    ]


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    plan = replace(QUICK if args.quick else FULL, load_tool=args.load_tool)
    started = time.time()
    settings = Settings(model_dir=args.model_dir)  # what the service will read from the same env
    results = _start(args, plan, settings)
    meta, machine = results["meta"], results["machine"]
    stem = f"{meta['date']}-{meta['host']}" + ("-quick" if args.quick else "")
    log(
        "start",
        f"{stem}: {machine['cpu']}, {machine['cores']} cores, load "
        f"{machine['loadavg_start']:.2f}; HTTP load by {plan.load_tool}",
    )
    corpus = engine.load_corpus(args.data, args.model_dir / "vocab.txt")
    results["corpus"] = {
        "file": str(args.data / engine.EWT_DEV),
        "sentences": len(corpus.texts),
        "pieces": corpus.pieces,
        "mean_pieces": corpus.pieces / len(corpus.texts),
    }
    log("corpus", f"{len(corpus.texts)} EWT dev sentences, {corpus.pieces} pieces")
    with tempfile.TemporaryDirectory(prefix="bigru-bench-") as tmp:
        for name, run in _phases(results, plan, args, settings, corpus, Path(tmp)):
            try:
                run()
            except Exception as e:  # one failed phase leaves the others' numbers
                results["errors"][name] = f"{type(e).__name__}: {e}"
                log(name, f"FAILED: {e}\n{traceback.format_exc()}")
            gc.collect()  # drop the phase's sessions and their thread pools
    meta["duration_s"] = time.time() - started
    results["summary"] = summary = report.summarize(results)
    args.out.mkdir(parents=True, exist_ok=True)
    prefix = args.out / stem
    prefix.with_name(stem + ".json").write_text(json.dumps(results, indent=1, default=str))
    plots = [p.name for p in plot(results, prefix)]
    prefix.with_name(stem + ".md").write_text(report.markdown(results, summary, plots))
    for t in summary["targets"]:
        value = "n/a" if t["value"] is None else f"{t['value']:.2f}"
        log("target", f"{verdict(t):4} {t['label']}: {value} (target {threshold_text(t)})")
    log("done", f"{prefix}.md/.json and {len(plots)} plots in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
