"""`python -m bench.run [--quick]`: every measurement in one run, then results, summary and plots.

Order matters on a small machine: the BLAS peak, the FLOP count and ORT first; the service
phases next, each server alone on the machine but for its load client; torch last, so its
thread pools are never warm while something else is timed.
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

from app.backend import OnnxBackend
from app.config import Settings
from bench import engine, flops, peer, report, service
from bench.machine import git_version, machine_info
from bench.plots import plot

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Plan:
    """Sizes and time budgets; FULL fits in ~6 minutes on 2 cores, QUICK in under one."""

    batch_sizes: tuple[int, ...] = (1, 8, 32, 128)
    clients: tuple[int, ...] = (1, 8, 32, 128)
    engine_s: float = 3.0  # per (engine, path, batch size)
    replay_s: float = 4.0  # service's engine in process, no HTTP, per route
    warmup_s: float = 1.0  # per HTTP run, not counted
    service_s: float = 7.0  # measured window per HTTP run
    teacher_s: float = 6.0
    matmul_n: int = 1024
    matmul_s: float = 2.0
    load_tool: str = "raw"  # bench.load's HTTP client: raw asyncio, or httpx to cross-check
    list_clients: int = 16  # /embed with lists of sentences: clients (enough to keep it busy) ...
    per_request: int = 32  # ... each sending this many per request (the teacher's batch)
    list_s: float = 14.0  # its window: runs of 7 s spread over +-10% here


FULL = Plan()
QUICK = Plan(
    batch_sizes=(1, 32),
    clients=(8, 32),
    engine_s=0.2,
    replay_s=0.3,
    warmup_s=0.2,
    service_s=0.6,
    teacher_s=0.3,
    list_s=0.6,
    matmul_n=256,
    matmul_s=0.2,
)


def log(phase: str, message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {phase:8} {message}", flush=True)


def _rate_line(row: dict[str, Any]) -> str:
    return (
        f"{row['pieces_per_s']:>9,.0f} pieces/s {row['sentences_per_s']:>7,.0f} sent/s "
        f"({row['runs']} runs, {row['seconds']:.1f} s)"
    )


def phase_peak(results: dict[str, Any], plan: Plan) -> None:
    as_is = flops.matmul_peak(plan.matmul_n, plan.matmul_s)
    log("peak", f"numpy matmul {plan.matmul_n}^2 as configured: {as_is['gflops']:.1f} GFLOP/s")
    one = flops.matmul_peak_single_thread(plan.matmul_n, plan.matmul_s)
    log("peak", f"numpy matmul {plan.matmul_n}^2 one thread: {one['gflops']:.1f} GFLOP/s")
    results["peak"] = {"as_is": as_is, "single_thread": one, "blas": flops.blas_info()}


def phase_flops(results: dict[str, Any], model_dir: Path) -> None:
    counted = flops.count_flops(model_dir / "model.onnx")
    results["flops"] = counted
    per = counted["per_path"]
    log(
        "flops",
        f"tag {per['tag']['piece'] / 1e6:.2f} MFLOP/piece, embed "
        f"{per['embed']['piece'] / 1e6:.2f} MFLOP/piece + {per['embed']['sentence'] / 1e6:.2f}"
        " MFLOP/sentence",
    )


def phase_ort(results: dict[str, Any], plan: Plan, model_dir: Path, corpus: engine.Corpus) -> None:
    threads = len(os.sched_getaffinity(0))
    backend = OnnxBackend(model_dir, ["cpu"], threads)  # the service's session class, all cores
    _engine_rows(results, plan, corpus, "ort", threads, lambda t: engine.ort_runner(backend, t))


def _engine_rows(
    results: dict[str, Any],
    plan: Plan,
    corpus: engine.Corpus,
    name: str,
    threads: int,
    runner: Callable[[str], engine.Run],
) -> None:
    rows = results.setdefault("engine", {}).setdefault("rows", [])
    for task in ("tag", "embed"):
        for B in plan.batch_sizes:
            batches = engine.length_sorted_batches(corpus.features, B)
            rate = engine.measure(runner(task), batches, plan.engine_s)
            row = {"engine": name, "task": task, "batch_size": B, "threads": threads}
            rows.append(row | rate.as_dict())
            log("engine", f"{name:7} {task:5} B={B:<3} {_rate_line(rows[-1])}")


def phase_torch(
    results: dict[str, Any],
    plan: Plan,
    model_dir: Path,
    ckpt: Path | None,
    sentence_ckpt: Path | None,
    corpus: engine.Corpus,
) -> None:
    """PyTorch eager rows: the given checkpoint, or by default the very weights of model.onnx
    read back (`bigru recover`), so a fresh clone without training runs measures it too."""
    import torch

    section = results.setdefault("engine", {})
    if ckpt is None:
        from training.recover import recover

        model, _ = recover(model_dir)
        source = f"weights recovered from {model_dir.name}/model.onnx"
    else:
        from training.train import load_checkpoint

        model, _ = load_checkpoint(ckpt, sentence_ckpt)  # as `bigru export` builds the model
        source = f"checkpoint {ckpt} (sentence encoder: {sentence_ckpt or 'the same'})"
    threads = len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    check = engine.length_sorted_batches(corpus.features[:64], 64)[0]
    parity = engine.torch_parity(model, OnnxBackend(model_dir, ["cpu"], 1), check)
    section["torch_parity_max_abs_diff"] = parity
    section.setdefault("notes", []).append(
        f"PyTorch {torch.__version__} eager, packed GRU, inference_mode, {threads} threads; "
        f"{source}; max |ORT - PyTorch| on 64 dev sentences {parity:.1e}"
    )
    log("engine", f"PyTorch, {source}: max |ORT - PyTorch| = {parity:.1e}")
    if parity > 1e-3:
        results["notes"].append(f"the PyTorch model does not match model.onnx ({parity:.1e})")
    _engine_rows(results, plan, corpus, "torch", threads, lambda t: engine.torch_runner(model, t))


def phase_service(
    results: dict[str, Any], plan: Plan, settings: Settings, texts_file: Path, workdir: Path
) -> None:
    rows = results.setdefault("service", {}).setdefault("rows", [])
    for batching, env in (("on", {}), ("off", {"BIGRU_MAX_BATCH_SIZE": "1"})):
        log_path = workdir / f"server-batching-{batching}.log"
        with service.server(settings.model_dir, env, log_path) as (base, pid):
            for task in ("tag", "embed"):
                for n in plan.clients:
                    r = service.load_run(
                        base,
                        pid,
                        task,
                        n,
                        texts_file,
                        plan.warmup_s,
                        plan.service_s,
                        plan.load_tool,
                    )
                    rows.append({"task": task, "batching": batching, **r})
                    lat, srv = r["latency_ms"], r["server"]
                    log(
                        "service",
                        f"/{task:5} batching {batching:3} {n:>3} clients: "
                        f"{r['requests_per_s']:>7,.0f} req/s p50 {lat['p50'] or 0:6.1f} p99 "
                        f"{lat['p99'] or 0:6.1f} ms batch {srv['mean_batch_size']:5.1f} "
                        f"ORT busy {srv['ort_busy']:.2f} errors {r['errors']}",
                    )


def phase_ceiling(
    results: dict[str, Any], plan: Plan, settings: Settings, texts: list[str], workdir: Path
) -> None:
    """Raw ORT on the batches the service formed at 32 clients; the engine in process."""
    n = report.CLIENTS
    batches = workdir / "batches.pickle"
    texts_file = workdir / "texts.json"
    section = results.setdefault("ceiling", {})
    env = {"BIGRU_BENCH_BATCHES": str(batches)}
    recording = service.server(settings.model_dir, env, workdir / "recorded.log", "bench.recorded")
    with recording as (base, pid):
        for task in ("tag", "embed"):
            c = service.ceiling(
                base,
                pid,
                settings,
                task,
                n,
                texts_file,
                plan.warmup_s,
                plan.service_s,
                batches,
                plan.load_tool,
            )
            section[task] = c
            log(
                "ceiling",
                f"/{task:5} {n} clients (recording server): "
                f"{c['recorded_service_sentences_per_s']:,.0f} sent/s over HTTP; raw ORT on its "
                f"{c['batches']} batches (mean {c['mean_batch_size']:.1f}): "
                f"{c['sentences_per_s']:,.0f} sent/s",
            )
    for task in ("tag", "embed"):
        p = service.in_process(settings, task, texts, n, plan.replay_s)
        section[task]["in_process"] = p
        log(
            "ceiling",
            f"/{task:5} {n} clients in process (no HTTP): {p['sentences_per_s']:,.0f} sent/s, "
            f"mean batch {p['mean_batch_size']:.1f}",
        )


def phase_peer(
    results: dict[str, Any],
    plan: Plan,
    cache: Path,
    texts: list[str],
    settings: Settings,
    texts_file: Path,
    workdir: Path,
) -> None:
    """The teacher on ORT, then /embed with lists of its batch size, then the teacher again:
    this machine's speed drifts (the teacher measured 336-481 sentences/s within an hour), so
    the ratio uses the teacher's mean of the runs on either side of ours."""
    path = cache / f"all-minilm-l6-v2-opset{peer.OPSET}.onnx"
    section = results.setdefault("peer", {"path": str(path)})
    if not path.is_file():
        section["export_max_abs_diff"] = peer.export_teacher(path)
        log(
            "peer",
            f"exported the teacher to {path} (max |ORT - torch| "
            f"{section['export_max_abs_diff']:.1e})",
        )
    threads = len(os.sched_getaffinity(0))

    def teacher(when: str) -> dict[str, Any]:
        t = peer.teacher_rate(path, texts, 32, threads, plan.teacher_s)
        log("peer", f"all-MiniLM-L6-v2 ORT B=32, {when} /embed lists: {_rate_line(t)}")
        return t

    with service.server(settings.model_dir, {}, workdir / "server-lists.log") as (base, pid):
        before = teacher("before")
        r = service.load_run(
            base,
            pid,
            "embed",
            plan.list_clients,
            texts_file,
            plan.warmup_s,
            plan.list_s,
            plan.load_tool,
            plan.per_request,
        )
        results.setdefault("service", {})["lists"] = r
        log(
            "peer",
            f"/embed {plan.list_clients} clients x {plan.per_request} sentences per "
            f"request: {r['sentences_per_s']:>7,.0f} sent/s p99 "
            f"{r['latency_ms']['p99'] or 0:6.1f} ms batch "
            f"{r['server']['mean_batch_size']:5.1f} errors {r['errors']}",
        )
        after = teacher("after")
    rounds = [before, after]
    section["teacher"] = {
        **rounds[0],
        "sentences_per_s": sum(t["sentences_per_s"] for t in rounds) / len(rounds),
        "pieces_per_s": sum(t["pieces_per_s"] for t in rounds) / len(rounds),
        "rounds_sentences_per_s": [t["sentences_per_s"] for t in rounds],
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny budgets: a smoke test (< 1 min)")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument(
        "--ckpt", type=Path, help="PyTorch tagger checkpoint (default: read back from model.onnx)"
    )
    p.add_argument("--sentence-ckpt", type=Path, help="its sentence encoder, as for export")
    p.add_argument("--model-dir", type=Path, default=ROOT / "models" / "bigru-en")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    p.add_argument("--cache", type=Path, default=ROOT / "cache" / "bench", help="teacher export")
    p.add_argument("--load-tool", choices=["raw", "httpx"], default="raw", help="bench.load client")
    args = p.parse_args(argv)
    plan = replace(QUICK if args.quick else FULL, load_tool=args.load_tool)
    model_dir = args.model_dir.resolve()
    if not (model_dir / "model.onnx").is_file():
        raise SystemExit(f"bench: no model.onnx in {model_dir} (--model-dir)")
    started = time.time()
    date, host = datetime.date.today().isoformat(), socket.gethostname()
    stem = f"{date}-{host}" + ("-quick" if args.quick else "")
    settings = Settings(model_dir=model_dir)  # what the service will read from the same env
    results: dict[str, Any] = {
        "meta": {
            "date": date,
            "host": host,
            "quick": args.quick,
            "git": git_version(),
            "model_dir": str(model_dir),
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
    log(
        "start",
        f"{stem}: {results['machine']['cpu']}, {results['machine']['cores']} cores, "
        f"load {results['machine']['loadavg_start']:.2f}",
    )
    corpus = engine.load_corpus(args.data, model_dir / "vocab.txt")
    results["corpus"] = {
        "file": str(args.data / engine.EWT_DEV),
        "sentences": len(corpus.texts),
        "pieces": corpus.pieces,
        "mean_pieces": corpus.pieces / len(corpus.texts),
    }
    log("corpus", f"{len(corpus.texts)} EWT dev sentences, {corpus.pieces} pieces")

    with tempfile.TemporaryDirectory(prefix="bigru-bench-") as tmp:
        workdir = Path(tmp)
        texts_file = workdir / "texts.json"
        texts_file.write_text(json.dumps(corpus.texts))
        phases: list[tuple[str, Callable[[], None]]] = [
            ("peak", lambda: phase_peak(results, plan)),
            ("flops", lambda: phase_flops(results, model_dir)),
            ("ort", lambda: phase_ort(results, plan, model_dir, corpus)),
            ("service", lambda: phase_service(results, plan, settings, texts_file, workdir)),
            ("ceiling", lambda: phase_ceiling(results, plan, settings, corpus.texts, workdir)),
            (
                "torch",
                lambda: phase_torch(
                    results, plan, model_dir, args.ckpt, args.sentence_ckpt, corpus
                ),
            ),
            (
                "peer",
                lambda: phase_peer(
                    results, plan, args.cache, corpus.texts, settings, texts_file, workdir
                ),
            ),
        ]
        for name, run in phases:
            try:
                run()
            except Exception as e:  # one failed phase leaves the others' numbers
                results["errors"][name] = f"{type(e).__name__}: {e}"
                log(name, f"FAILED: {e}\n{traceback.format_exc()}")
            gc.collect()  # drop the phase's sessions and their thread pools

    results["meta"]["duration_s"] = time.time() - started
    results["summary"] = summary = report.summarize(results)
    args.out.mkdir(parents=True, exist_ok=True)
    prefix = args.out / stem
    prefix.with_name(stem + ".json").write_text(json.dumps(results, indent=1, default=str))
    plots = [p.name for p in plot(results, prefix)]
    prefix.with_name(stem + ".md").write_text(report.markdown(results, summary, plots))
    for t in summary["targets"]:
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[t["pass"]]
        value = "n/a" if t["value"] is None else f"{t['value']:.2f}"
        log("target", f"{verdict:4} {t['label']}: {value} (target {t['threshold']:g})")
    log("done", f"{prefix}.md/.json and {len(plots)} plots in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
