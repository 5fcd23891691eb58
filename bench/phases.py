"""The measurements `bench.run` makes, one function per phase, each adding its part to the
results dict: the matmul peak, FLOPs, ORT and PyTorch on the model alone, the service over HTTP
with batching on and off, its ceiling, and the teacher as peer. (One sentence per request and
server processes: `single.py`; spaCy: `spacy_sm.py`.)"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.config import Settings
from app.model.backend import OnnxBackend
from bench import ceiling, engine, peer, service
from bench.plan import Plan
from bench.probes import flops
from bench.rows import CLIENTS


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
        from training.checkpoint import load_checkpoint

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
    n = CLIENTS
    batches = workdir / "batches.pickle"
    texts_file = workdir / "texts.json"
    section = results.setdefault("ceiling", {})
    env = {"BIGRU_BENCH_BATCHES": str(batches)}
    recording = service.server(settings.model_dir, env, workdir / "recorded.log", "bench.recorded")
    with recording as (base, pid):
        for task in ("tag", "embed"):
            c = ceiling.measure(
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
        p = ceiling.in_process(settings, task, texts, n, plan.replay_s)
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
