"""What bounds each target, from the run's own figures: CPU per request against ORT's CPU per
sentence, ORT's gain from batching, PyTorch's share of the matmul peak, Little's law for the
p99, and useful FLOP/s against the peak (`physical`). report.py writes them out."""

from __future__ import annotations

from typing import Any

from bench.rows import (
    CLIENTS,
    Row,
    cpu_ms_per_request,
    dig,
    engine_row,
    ratio,
    service_row,
    single_row,
)


def bounds(results: dict[str, Any]) -> dict[str, Any]:
    """What limits each target, from this run's own measurements (None where one is missing).

    - front end: the service's CPU per request at 32 clients (server CPU / requests per s)
      less ORT's CPU per sentence in the ceiling (the CPU time its runs took / sentences; in
      results without it, workers x intra-op threads taken as busy throughout). With both
      cores busy all the time, service / ceiling is at most ort / (ort + front end).
    - batching: ORT alone, B=32 over B=1 (engine rows, sentences/s); the front end does not
      batch at all, so on / off stays below this.
    - ORT vs PyTorch: PyTorch eager's share of the matmul peak at B=32; 1.5x needs ORT at 1.5
      times that share.
    - one sentence per request vs lists: server CPU-ms per sentence in each run; with the
      cores as busy in both, single / lists is lists' CPU per sentence over single's.
    - p99 at 8 clients: closed-loop clients keep the server busy, so the mean latency is
      clients / throughput (Little's law); the throughput p99 <= 50 ms would need, at this run's
      p99 / mean spread.
    """
    out: dict[str, Any] = {task: _front_end(results, task) for task in ("tag", "embed")}
    peak = _peak_all(results)
    flops = dig(results.get("flops"), "per_path")
    for task in ("tag", "embed"):
        torch32 = engine_row(results, "torch", task, 32)
        if torch32 and flops and peak:
            f = flops[task]
            useful = (
                torch32["pieces_per_s"] * f["piece"] + torch32["sentences_per_s"] * f["sentence"]
            )
            out[task]["torch_b32_peak_share"] = useful / 1e9 / peak
        lists = single_row(results, task, "lists", "repeated")
        lists_ms = cpu_ms_per_request(lists)
        if lists_ms is not None:
            lists_ms /= lists["per_request"]
        single_ms = cpu_ms_per_request(single_row(results, task, "single", "repeated"))
        out[task]["lists_cpu_ms_per_sentence"] = lists_ms
        out[task]["single_cpu_ms_per_sentence"] = single_ms
        out[task]["single_over_lists_bound"] = ratio(lists_ms, single_ms)
    eight = service_row(results, "tag", "on", 8)
    mean, p99 = dig(eight, "latency_ms", "mean"), dig(eight, "latency_ms", "p99")
    out["p99_tag_8"] = {
        "requests_per_s": dig(eight, "requests_per_s"),
        "server_cpu": dig(eight, "server", "cpu"),
        "mean_ms": mean,
        "p99_over_mean": ratio(p99, mean),
        "requests_per_s_needed": 8 * 1000 / (50 / (p99 / mean)) if mean and p99 else None,
    }
    return out


def _front_end(results: dict[str, Any], task: str) -> dict[str, Any]:
    """CPU-ms per request at 32 clients, ORT's per sentence in the ceiling, and the rest."""
    settings = results.get("service_settings") or {}
    cores_per_run = (settings.get("workers") or 1) * (settings.get("intra_op_threads") or 1)
    ceiling = results.get("ceiling", {}).get(task)
    sps, cpu_s, sentences = (dig(ceiling, k) for k in ("sentences_per_s", "cpu_s", "sentences"))
    if cpu_s is not None and sentences:
        ort_ms: float | None = 1000 * cpu_s / sentences
    else:
        ort_ms = 1000 * cores_per_run / sps if sps else None
    total_ms = cpu_ms_per_request(service_row(results, task, "on", CLIENTS))
    front_ms = total_ms - ort_ms if total_ms is not None and ort_ms is not None else None
    b1 = dig(engine_row(results, "ort", task, 1), "sentences_per_s")
    b32 = dig(engine_row(results, "ort", task, 32), "sentences_per_s")
    return {
        "server_cpu_ms_per_request": total_ms,
        "ort_cpu_ms_per_sentence": ort_ms,
        "front_end_cpu_ms_per_request": front_ms,
        # none below zero: the ceiling's ORT alone took more CPU than the whole service
        "front_end_over_ort": (
            ratio(front_ms, ort_ms) if front_ms is not None and front_ms >= 0 else None
        ),
        "ceiling_share_bound": (
            ort_ms / (ort_ms + front_ms) if ort_ms and front_ms and front_ms > 0 else None
        ),
        "ort_b32_over_b1": ratio(b32, b1),
    }


def _peak_all(results: dict[str, Any]) -> float | None:
    """The matmul peak with all threads: as configured, or one thread's if that is better (all
    threads can be slower than one when the cores are shared)."""
    peak = results.get("peak")
    return max(
        filter(None, [dig(peak, "as_is", "gflops"), dig(peak, "single_thread", "gflops")]),
        default=None,
    )


def physical(results: dict[str, Any]) -> list[Row]:
    """Useful GFLOP/s (counted FLOPs x measured rates) as a share of the matmul peak: the engine
    at its best batch size against the all-threads peak; the ceiling and the service, whose
    workers each run ORT on one intra-op thread (the default), against workers x the one-thread
    peak (at most the all-threads peak)."""
    flops = dig(results.get("flops"), "per_path")
    if not flops:
        return []
    peak_one = dig(results.get("peak"), "single_thread", "gflops")
    peak_all = _peak_all(results)
    mean_pieces = dig(results.get("corpus"), "mean_pieces")
    rows = []
    for task in ("tag", "embed"):
        f = flops[task]
        measured: list[tuple[str, float | None, float | None, float | None]] = []
        ort = [r for r in results.get("engine", {}).get("rows", []) if r["engine"] == "ort"]
        best = max(
            (r for r in ort if r["task"] == task), key=lambda r: r["pieces_per_s"], default=None
        )
        if best:
            name = f"ORT B={best['batch_size']}, {best['threads']} threads"
            measured.append((name, best["pieces_per_s"], best["sentences_per_s"], peak_all))
        ceil = results.get("ceiling", {}).get(task)
        threads = dig(results.get("service_settings"), "intra_op_threads") or 1
        workers = dig(results.get("service_settings"), "workers") or 1
        # one-thread runs side by side: each worker's core at the one-thread peak
        peak = (
            min(filter(None, [peak_one * workers if peak_one else None, peak_all]), default=None)
            if threads == 1
            else peak_all
        )
        if ceil:
            name = f"raw ORT ceiling, {workers} worker(s) x {threads} intra-op thread(s)"
            measured.append((name, ceil["pieces_per_s"], ceil["sentences_per_s"], peak))
        on = service_row(results, task, "on", CLIENTS)
        if on and mean_pieces:
            s = on["sentences_per_s"]
            measured.append((f"service, {CLIENTS} clients", s * mean_pieces, s, peak))
        for name, pieces, sentences, peak in measured:
            gflops = ((pieces or 0) * f["piece"] + (sentences or 0) * f["sentence"]) / 1e9
            rows.append(
                {
                    "task": task,
                    "what": name,
                    "pieces_per_s": pieces,
                    "gflops": gflops,
                    "peak_gflops": peak,
                    "share": ratio(gflops, peak),
                }
            )
    return rows
