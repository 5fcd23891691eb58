"""The measurements `bench.run` makes, one function per phase, each adding its part to the
results dict: the matmul peak and FLOPs, ORT and PyTorch on the model alone, the service over
HTTP with batching on and off, its raw-ORT ceiling, one sentence per request against lists,
server processes, and the teacher as peer (spaCy: `spacy_sm.py`).

Every server gets `Plan.env` (its ORT settings, so the ceiling runs as it does) unless a phase
says otherwise; the texts are EWT dev sentences cycled, or novel ones never sent twice.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.model.backend import OnnxBackend
from bench import ceiling, peer, runtimes, service, texts
from bench.probes import flops
from bench.summary import CLIENTS, LIST_CLIENTS, PER_REQUEST

Results = dict[str, Any]
WORDS_SAMPLE = 20_000  # texts whose tokens are counted for the words/s of /tag


def log(phase: str, message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {phase:8} {message}", flush=True)


def _rate(row: dict[str, Any]) -> str:
    return f"{row['pieces_per_s']:>9,.0f} pieces/s {row['sentences_per_s']:>7,.0f} sent/s"


def _line(r: dict[str, Any]) -> str:
    lat, srv = r["latency_ms"], r["server"]
    return (
        f"{r['requests_per_s']:>7,.0f} req/s {r['sentences_per_s']:>7,.0f} sent/s p50 "
        f"{lat['p50'] or 0:6.1f} p99 {lat['p99'] or 0:6.1f} ms batch {srv['mean_batch_size']:5.1f}"
        f" server CPU {srv['cpu'] or 0:.2f} errors {r['errors']} ({r['tool']})"
    )


def phase_peak(results: Results, plan: Any) -> None:
    as_is = flops.matmul_peak(plan.matmul_n, plan.matmul_s)
    one = flops.matmul_peak_single_thread(plan.matmul_n, plan.matmul_s)
    log("peak", f"numpy matmul: {as_is['gflops']:.1f} GFLOP/s, one thread {one['gflops']:.1f}")
    results["peak"] = {"as_is": as_is, "single_thread": one, "blas": flops.blas_info()}


def phase_flops(results: Results, model_dir: Path) -> None:
    results["flops"] = counted = flops.count_flops(model_dir / "model.onnx")
    per = counted["per_path"]
    log(
        "flops",
        f"tag {per['tag']['piece'] / 1e6:.2f} MFLOP/piece, embed {per['embed']['piece'] / 1e6:.2f}"
        f" MFLOP/piece + {per['embed']['sentence'] / 1e6:.2f} MFLOP/sentence",
    )


def phase_ort(results: Results, plan: Any, model_dir: Path, corpus: runtimes.Corpus) -> None:
    threads = len(os.sched_getaffinity(0))
    backend = OnnxBackend(model_dir, ["cpu"], threads)  # the service's session class, all cores
    _engine_rows(results, plan, corpus, "ort", threads, lambda t: runtimes.ort_runner(backend, t))


def _engine_rows(
    results: Results,
    plan: Any,
    corpus: runtimes.Corpus,
    name: str,
    threads: int,
    runner: Callable[[str], runtimes.Run],
) -> None:
    rows = results.setdefault("engine", {}).setdefault("rows", [])
    for task in ("tag", "embed"):
        for B in plan.batch_sizes:
            batches = runtimes.length_sorted_batches(corpus.features, B)
            rate = runtimes.measure(runner(task), batches, plan.engine_s)
            rows.append({"engine": name, "task": task, "batch_size": B, "threads": threads})
            rows[-1] |= rate.as_dict()
            log("engine", f"{name:5} {task:5} B={B:<3} {_rate(rows[-1])}")


def phase_torch(results: Results, plan: Any, model_dir: Path, corpus: runtimes.Corpus) -> None:
    """PyTorch eager rows on the very weights of model.onnx, read back (`bigru recover`), so a
    fresh clone without training runs measures them too."""
    import torch

    from training.recover import recover

    model, _ = recover(model_dir)
    source = f"weights recovered from {model_dir.name}/model.onnx"
    threads = len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    check = runtimes.length_sorted_batches(corpus.features[:64], 64)[0]
    parity = runtimes.torch_parity(model, OnnxBackend(model_dir, ["cpu"], 1), check)
    section = results.setdefault("engine", {})
    section["torch_parity_max_abs_diff"] = parity
    section.setdefault("notes", []).append(
        f"PyTorch {torch.__version__} eager, packed GRU, inference_mode, {threads} threads; "
        f"{source}; max |ORT - PyTorch| on 64 dev sentences {parity:.1e}"
    )
    if parity > 1e-3:
        results["notes"].append(f"the PyTorch model does not match model.onnx ({parity:.1e})")
    _engine_rows(results, plan, corpus, "torch", threads, lambda t: runtimes.torch_runner(model, t))


def phase_service(results: Results, plan: Any, model_dir: Path, dev: list[str], tmp: Path) -> None:
    """Both routes at every client count, batching on, then off (`BIGRU_MAX_BATCH_SIZE=1`)."""
    rows = results.setdefault("service", {}).setdefault("rows", [])
    for batching, env in (("on", {}), ("off", {"BIGRU_MAX_BATCH_SIZE": "1"})):
        log_path = tmp / f"server-batching-{batching}.log"
        with service.server(model_dir, plan.env | env, log_path) as (base, pid):
            for task in ("tag", "embed"):
                for n in plan.clients:
                    r = service.load_run(base, pid, task, n, dev, plan.warmup_s, plan.service_s)
                    rows.append({"task": task, "batching": batching, **r})
                    log("service", f"/{task:5} batching {batching:3} {n:>3} clients: {_line(r)}")


def phase_ceiling(results: Results, plan: Any, model_dir: Path, dev: list[str], tmp: Path) -> None:
    """Raw ORT on the batches the service formed at CLIENTS clients."""
    section = results.setdefault("ceiling", {})
    # one process: the batches are recorded by the process that `bench.recorded` wraps
    env = plan.env | {"BIGRU_BENCH_BATCHES": str(tmp / "batches.pickle"), "BIGRU_PROCESSES": "1"}
    recording = service.server(model_dir, env, tmp / "recorded.log", "bench.recorded")
    with recording as (base, pid):
        for task in ("tag", "embed"):
            section[task] = c = ceiling.measure(
                base,
                pid,
                model_dir,
                plan.workers,
                task,
                CLIENTS,
                dev,
                plan.warmup_s,
                plan.service_s,
                tmp / "batches.pickle",
            )
            log(
                "ceiling",
                f"/{task:5} {c['recorded_service_sentences_per_s']:,.0f} sent/s over HTTP; raw "
                f"ORT on its {c['batches']} batches: {c['sentences_per_s']:,.0f} sent/s",
            )


def phase_single(
    results: Results, plan: Any, model_dir: Path, dev: list[str], novel: list[str], tmp: Path
) -> None:
    """One server; per route, lists of PER_REQUEST sentences at LIST_CLIENTS connections, then
    one sentence per request at CLIENTS on repeated text, then on novel text (the two routes
    get disjoint halves of the pool, and the load never wraps around it unless it runs dry)."""
    rows = results.setdefault("single", {}).setdefault("rows", [])
    pools = {"tag": novel[: len(novel) // 2], "embed": novel[len(novel) // 2 :]}
    with service.server(model_dir, plan.env, tmp / "server-single.log") as (base, pid):
        for task in ("tag", "embed"):
            runs = [
                ("lists", "repeated", LIST_CLIENTS, PER_REQUEST, dev),
                ("single", "repeated", CLIENTS, 1, dev),
                ("single", "novel", CLIENTS, 1, pools[task]),
            ]
            for request, text, clients, per_request, sent in runs:
                r = service.load_run(
                    base, pid, task, clients, sent, plan.warmup_s, plan.service_s, per_request
                )
                row = {"task": task, "request": request, "text": text, **r}
                if task == "tag":  # /tag answers with one token per word
                    row["words_per_s"] = r["sentences_per_s"] * texts.words_per_text(
                        sent[:WORDS_SAMPLE]
                    )
                rows.append(row)
                if text == "novel" and r["requests_sent"] > r["distinct_bodies"]:
                    results["notes"].append(
                        f"/{task} novel text: {r['requests_sent']:,} requests sent but only "
                        f"{r['distinct_bodies']:,} distinct sentences (raise Plan.novel_texts)"
                    )
                log("single", f"/{task:5} {clients} x {per_request} {text:8} {_line(row)}")


def phase_processes(
    results: Results, plan: Any, model_dir: Path, dev: list[str], tmp: Path
) -> None:
    """One sentence per request on repeated text, a fresh server per `BIGRU_PROCESSES` setting
    with the service's own default of workers per process."""
    section = results.setdefault("processes", {"settings": list(plan.processes), "rows": []})
    for n in plan.processes:
        env = {"BIGRU_PROCESSES": str(n)}
        with service.server(model_dir, env, tmp / f"server-processes-{n}.log") as (base, pid):
            for task in ("tag", "embed"):
                r = service.load_run(base, pid, task, CLIENTS, dev, plan.warmup_s, plan.service_s)
                section["rows"].append({"task": task, "processes": n, **r})
                log("procs", f"/{task:5} BIGRU_PROCESSES={n}: {_line(r)}")


def phase_peer(results: Results, plan: Any, model_dir: Path, dev: list[str], tmp: Path) -> None:
    """The teacher on ORT, then /embed with lists of its batch size, then the teacher again:
    this machine's speed drifts, so the ratio uses the teacher's mean of the runs on either
    side of ours."""
    path = plan.cache / f"all-minilm-l6-v2-opset{peer.OPSET}.onnx"
    section = results.setdefault("peer", {"path": str(path)})
    if not path.is_file():
        section["export_max_abs_diff"] = peer.export_teacher(path)
    threads = len(os.sched_getaffinity(0))
    rounds = []
    with service.server(model_dir, plan.env, tmp / "server-lists.log") as (base, pid):
        rounds.append(peer.teacher_rate(path, dev, 32, threads, plan.teacher_s))
        r = service.load_run(
            base, pid, "embed", plan.list_clients, dev, plan.warmup_s, plan.list_s, PER_REQUEST
        )
        rounds.append(peer.teacher_rate(path, dev, 32, threads, plan.teacher_s))
    results.setdefault("service", {})["lists"] = r
    section["teacher"] = {
        **rounds[0],
        "sentences_per_s": sum(t["sentences_per_s"] for t in rounds) / len(rounds),
        "pieces_per_s": sum(t["pieces_per_s"] for t in rounds) / len(rounds),
        "rounds_sentences_per_s": [t["sentences_per_s"] for t in rounds],
    }
    teacher = section["teacher"]["sentences_per_s"]
    log("peer", f"teacher {teacher:,.0f} sent/s; /embed lists of {PER_REQUEST}: {_line(r)}")
