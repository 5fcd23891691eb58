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
import os
import socket
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from bench import costs, load, phases, report, runtimes, spacy_sm, summary
from bench.machine import git_version, machine_info
from bench.phases import log
from bench.texts import novel_texts

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Plan:
    """Sizes and time budgets; the full plan fits in ~8 minutes on 2 cores, --quick in one."""

    batch_sizes: tuple[int, ...] = (1, 8, 32, 128)
    clients: tuple[int, ...] = (1, 8, 32, 128)
    engine_s: float = 3.0  # per (engine, path, batch size)
    warmup_s: float = 1.0  # per HTTP run, not counted
    service_s: float = 7.0  # measured window per HTTP run
    teacher_s: float = 6.0
    matmul_n: int = 1024
    matmul_s: float = 2.0
    list_clients: int = 16  # /embed with lists of sentences against the teacher: clients
    list_s: float = 14.0  # its window, twice the others: list runs vary more
    novel_texts: int = 200_000  # corpus sentences for the novel-text runs, half per route
    processes: tuple[int, ...] = (1, 2)  # BIGRU_PROCESSES settings, one server each
    spacy_s: float = 5.0  # per spaCy pipeline
    spacy_sentences: int | None = None  # EWT dev sentences it runs over (None: all)
    workers: int = len(os.sched_getaffinity(0))  # each server's ORT runs at once
    cache: Path = ROOT / "cache" / "bench"  # the teacher's export

    @property
    def env(self) -> dict[str, str]:
        """The ORT settings of the servers, stated, so the ceiling runs as they do."""
        return {"BIGRU_WORKERS": str(self.workers), "BIGRU_INTRA_OP_THREADS": "1"}


QUICK = dict(
    batch_sizes=(1, 32),
    clients=(8, 32),
    engine_s=0.2,
    warmup_s=0.2,
    service_s=0.6,
    teacher_s=0.3,
    list_s=0.6,
    matmul_n=256,
    matmul_s=0.2,
    novel_texts=20_000,
    spacy_s=0.2,
    spacy_sentences=200,
)


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny budgets: a smoke test (~1 min)")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--model-dir", type=Path, default=ROOT / "models" / "bigru-en")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    p.add_argument("--only", help="comma-separated phases to run, e.g. processes,costs")
    args = p.parse_args(argv)
    args.model_dir = args.model_dir.resolve()
    if not (args.model_dir / "model.onnx").is_file():
        raise SystemExit(f"bench: no model.onnx in {args.model_dir} (--model-dir)")
    return args


def _start(args: argparse.Namespace, plan: Plan) -> dict[str, Any]:
    """The results dict before any phase: what ran where, and notes on the conditions."""
    machine = machine_info()
    results: dict[str, Any] = {
        "meta": {
            "date": datetime.date.today().isoformat(),
            "host": socket.gethostname(),
            "quick": args.quick,
            "git": git_version(),
            "model_dir": str(args.model_dir),
            "data": str(args.data),
        },
        "machine": machine,
        "plan": asdict(plan) | {"load_tool": "wrk" if load.wrk_available() else "python"},
        "service_settings": {"workers": plan.workers, "intra_op_threads": 1},
        "notes": [],
        "errors": {},
    }
    if args.quick:
        results["notes"].append("--quick: tiny budgets, a smoke test; the numbers mean little")
    if machine["loadavg_start"] > 0.5:
        results["notes"].append(
            f"the machine was busy at start (load average {machine['loadavg_start']:.2f}): "
            "numbers are low"
        )
    return results


def _phases(
    results: dict[str, Any],
    plan: Plan,
    args: argparse.Namespace,
    corpus: runtimes.Corpus,
    tmp: Path,
) -> list[tuple[str, Callable[[], None]]]:
    model, dev = args.model_dir, corpus.texts

    def single() -> None:
        novel = novel_texts(args.data, plan.novel_texts)
        phases.phase_single(results, plan, model, dev, novel, tmp)

    return [
        ("peak", lambda: phases.phase_peak(results, plan)),
        ("flops", lambda: phases.phase_flops(results, model)),
        ("ort", lambda: phases.phase_ort(results, plan, model, corpus)),
        ("service", lambda: phases.phase_service(results, plan, model, dev, tmp)),
        ("ceiling", lambda: phases.phase_ceiling(results, plan, model, dev, tmp)),
        ("single", single),
        ("processes", lambda: phases.phase_processes(results, plan, model, dev, tmp)),
        ("costs", lambda: costs.phase(results, plan, model, dev, log)),
        ("spacy", lambda: spacy_sm.phase(results, plan, args.data, log)),
        ("torch", lambda: phases.phase_torch(results, plan, model, corpus)),
        ("peer", lambda: phases.phase_peer(results, plan, model, dev, tmp)),
    ]


def main(argv: list[str] | None = None) -> None:
    args = _args(argv)
    plan = replace(Plan(), **QUICK) if args.quick else Plan()
    started = time.time()
    results = _start(args, plan)
    meta, machine = results["meta"], results["machine"]
    stem = f"{meta['date']}-{meta['host']}" + ("-quick" if args.quick else "")
    stem += f"-{args.only.replace(',', '-')}" if args.only else ""
    log("start", f"{stem}: {machine['cpu']}, {machine['cores']} cores, load "
        f"{machine['loadavg_start']:.2f}; HTTP load by {results['plan']['load_tool']}")  # fmt: skip
    corpus = runtimes.load_corpus(args.data, args.model_dir / "vocab.txt")
    results["corpus"] = {
        "file": str(args.data / runtimes.EWT_DEV),
        "sentences": len(corpus.texts),
        "pieces": corpus.pieces,
        "mean_pieces": corpus.pieces / len(corpus.texts),
    }
    with tempfile.TemporaryDirectory(prefix="bigru-bench-") as tmp:
        for name, run in _phases(results, plan, args, corpus, Path(tmp)):
            if args.only and name not in args.only.split(","):
                continue
            try:
                run()
            except Exception as e:  # one failed phase leaves the others' numbers
                results["errors"][name] = f"{type(e).__name__}: {e}"
                log(name, f"FAILED: {e}\n{traceback.format_exc()}")
            gc.collect()  # drop the phase's sessions and their thread pools
    meta["duration_s"] = time.time() - started
    results["summary"] = numbers = summary.summarize(results)
    args.out.mkdir(parents=True, exist_ok=True)
    prefix = args.out / stem
    prefix.with_name(stem + ".json").write_text(json.dumps(results, indent=1, default=str))
    plots = [p.name for p in report.plot(results, prefix)]
    prefix.with_name(stem + ".md").write_text(report.markdown(results, numbers, plots))
    for t in numbers["targets"]:
        value = "n/a" if t["value"] is None else f"{t['value']:.2f}"
        log("target", f"{summary.verdict(t):4} {t['label']}: {value} ({summary.threshold_text(t)})")
    log("done", f"{prefix}.md/.json and {len(plots)} plots in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
