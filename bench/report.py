"""Results dict -> ratios and targets, and the Markdown summary (`plots.py` draws).

Pure functions of the results `bench.run` writes (so a fake dict tests them). A missing
measurement (a skipped or failed phase) gives "n/a", never an exception.
"""

from __future__ import annotations

from typing import Any

Row = dict[str, Any]

# (key, label, threshold, higher is better)
TARGETS = [
    ("ceiling_tag", "service /tag at 32 clients / raw ORT ceiling", 0.75, True),
    ("ceiling_embed", "service /embed at 32 clients / raw ORT ceiling", 0.75, True),
    ("batching_tag", "/tag batching on / off at 32 clients", 3.0, True),
    ("batching_embed", "/embed batching on / off at 32 clients", 3.0, True),
    ("ort_torch_tag", "ORT / PyTorch eager, tag path, batch 32", 1.5, True),
    ("ort_torch_embed", "ORT / PyTorch eager, embed path, batch 32", 1.5, True),
    ("p99_tag_8", "/tag p99 latency at 8 clients (ms)", 50.0, False),
    (
        "embed_vs_teacher",
        "/embed, 32 sentences per request / all-MiniLM-L6-v2 on ORT (batch 32)",
        10.0,
        True,
    ),
]
CLIENTS = 32  # the concurrency the targets are set at


def engine_row(results: dict[str, Any], engine: str, task: str, batch_size: int) -> Row | None:
    for row in results.get("engine", {}).get("rows", []):
        if (row["engine"], row["task"], row["batch_size"]) == (engine, task, batch_size):
            return row
    return None


def service_row(results: dict[str, Any], task: str, batching: str, clients: int) -> Row | None:
    for row in results.get("service", {}).get("rows", []):
        if (row["task"], row["batching"], row["clients"]) == (task, batching, clients):
            return row
    return None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def dig(row: Row | None, *keys: str) -> Any:
    """row[k1][k2]...; None where a level is missing."""
    value: Any = row
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """The ratios the issue asks for, and each target with its verdict (None: not measured)."""
    sps = "sentences_per_s"
    values: dict[str, float | None] = {}
    for task in ("tag", "embed"):
        on = service_row(results, task, "on", CLIENTS)
        off = service_row(results, task, "off", CLIENTS)
        values[f"ceiling_{task}"] = _ratio(
            dig(on, sps), dig(results.get("ceiling", {}).get(task), sps)
        )
        values[f"batching_{task}"] = _ratio(dig(on, sps), dig(off, sps))
        values[f"ort_torch_{task}"] = _ratio(
            dig(engine_row(results, "ort", task, 32), "pieces_per_s"),
            dig(engine_row(results, "torch", task, 32), "pieces_per_s"),
        )
    values["p99_tag_8"] = dig(service_row(results, "tag", "on", 8), "latency_ms", "p99")
    teacher = dig(results.get("peer"), "teacher", sps)
    values["embed_vs_teacher"] = _ratio(dig(results.get("service"), "lists", sps), teacher)
    values["embed_single_vs_teacher"] = _ratio(
        dig(service_row(results, "embed", "on", CLIENTS), sps), teacher
    )
    for B in (32, 128):
        values[f"ort_embed_b{B}_vs_teacher"] = _ratio(
            dig(engine_row(results, "ort", "embed", B), sps), teacher
        )
    targets = []
    for key, label, threshold, higher in TARGETS:
        v = values[key]
        ok = None if v is None else (v >= threshold if higher else v <= threshold)
        targets.append(
            {
                "key": key,
                "label": label,
                "value": v,
                "threshold": threshold,
                "higher_is_better": higher,
                "pass": ok,
            }
        )
    return {
        "ratios": values,
        "targets": targets,
        "physical": physical(results),
        "bounds": bounds(results),
    }


def bounds(results: dict[str, Any]) -> dict[str, Any]:
    """What limits each target, from this run's own measurements (None where one is missing).

    - front end: the service's CPU per request at 32 clients (server CPU / requests per s)
      less ORT's CPU per sentence in the ceiling (workers x intra-op threads busy / its rate).
      With both cores busy all the time, service / ceiling is at most ort / (ort + front end).
    - batching: ORT alone, B=32 over B=1 (engine rows, sentences/s); the front end does not
      batch at all, so on / off stays below this.
    - ORT vs PyTorch: PyTorch eager's share of the matmul peak at B=32; 1.5x needs ORT at 1.5
      times that share.
    - p99 at 8 clients: closed-loop clients keep the server busy, so the mean latency is
      clients / throughput (Little's law); the throughput p99 <= 50 ms would need, at this run's
      p99 / mean spread.
    """
    settings = results.get("service_settings") or {}
    cores_per_run = (settings.get("workers") or 1) * (settings.get("intra_op_threads") or 1)
    out: dict[str, Any] = {}
    for task in ("tag", "embed"):
        on = service_row(results, task, "on", CLIENTS)
        ceiling = dig(results.get("ceiling", {}).get(task), "sentences_per_s")
        cpu, rps = dig(on, "server", "cpu"), dig(on, "requests_per_s")
        ort_ms = 1000 * cores_per_run / ceiling if ceiling else None
        total_ms = 1000 * cpu / rps if cpu and rps else None
        front_ms = total_ms - ort_ms if total_ms is not None and ort_ms is not None else None
        b1 = dig(engine_row(results, "ort", task, 1), "sentences_per_s")
        b32 = dig(engine_row(results, "ort", task, 32), "sentences_per_s")
        out[task] = {
            "server_cpu_ms_per_request": total_ms,
            "ort_cpu_ms_per_sentence": ort_ms,
            "front_end_cpu_ms_per_request": front_ms,
            "ceiling_share_bound": (
                ort_ms / (ort_ms + front_ms) if ort_ms and front_ms and front_ms > 0 else None
            ),
            "ort_b32_over_b1": _ratio(b32, b1),
        }
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
    eight = service_row(results, "tag", "on", 8)
    mean, p99 = dig(eight, "latency_ms", "mean"), dig(eight, "latency_ms", "p99")
    out["p99_tag_8"] = {
        "requests_per_s": dig(eight, "requests_per_s"),
        "server_cpu": dig(eight, "server", "cpu"),
        "mean_ms": mean,
        "p99_over_mean": _ratio(p99, mean),
        "requests_per_s_needed": 8 * 1000 / (50 / (p99 / mean)) if mean and p99 else None,
    }
    return out


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
                    "share": _ratio(gflops, peak),
                }
            )
    return rows


def _fmt(v: Any, digits: int = 0) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float | int):
        return f"{v:,.{digits}f}"
    return str(v)


def markdown(results: dict[str, Any], summary: dict[str, Any], plots: list[str]) -> str:
    """The human summary: targets first, then every table the targets come from."""
    meta, machine = results.get("meta", {}), results.get("machine", {})
    out = [f"# bigru-serve benchmark, {meta.get('date')} on {meta.get('host')}", ""]
    out.append(
        f"{machine.get('cpu')}, {machine.get('cores')} cores; load average at start "
        f"{_fmt(machine.get('loadavg_start'), 2)}; onnxruntime {machine.get('onnxruntime')}, "
        f"torch {machine.get('torch')}, numpy {machine.get('numpy')}. "
        f"Model `{meta.get('model_dir')}`, commit {meta.get('git')}. Sentences: "
        f"{dig(results.get('corpus'), 'sentences')} EWT dev `# text` lines, "
        f"{_fmt(dig(results.get('corpus'), 'mean_pieces'), 1)} WordPiece pieces on average."
    )
    for note in results.get("notes", []):
        out.append(f"\n> {note}")
    out += ["", "## Targets", "", "| target | measured | threshold | result |", "|---|---|---|---|"]
    for t in summary["targets"]:
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[t["pass"]]
        op = ">=" if t["higher_is_better"] else "<="
        out.append(
            f"| {t['label']} | {_fmt(t['value'], 2)} | {op} {t['threshold']:g} | {verdict} |"
        )
    out += _engine_table(results) + _ceiling_table(results) + _service_table(results)
    out += _peer_table(results, summary) + _physical_table(results, summary)
    out += _bounds_section(summary)
    if results.get("errors"):
        out += ["", "## Errors", ""] + [f"- {k}: {v}" for k, v in results["errors"].items()]
    out += [""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(out) + "\n"


def _engine_table(results: dict[str, Any]) -> list[str]:
    rows = results.get("engine", {}).get("rows", [])
    out = ["", "## Engine: ONNX Runtime vs PyTorch eager (threads = cores)", ""]
    out += [f"- {n}" for n in results.get("engine", {}).get("notes", [])]
    out += [
        "",
        "| path | batch | ORT pieces/s | ORT sent/s | PyTorch pieces/s | PyTorch sent/s "
        "| ORT / PyTorch |",
        "|---|---|---|---|---|---|---|",
    ]
    for task in ("tag", "embed"):
        for B in sorted({r["batch_size"] for r in rows if r["task"] == task}):
            o, t = engine_row(results, "ort", task, B), engine_row(results, "torch", task, B)
            ratio = _ratio(dig(o, "pieces_per_s"), dig(t, "pieces_per_s"))
            out.append(
                f"| {task} | {B} | {_fmt(dig(o, 'pieces_per_s'))} | "
                f"{_fmt(dig(o, 'sentences_per_s'))} | {_fmt(dig(t, 'pieces_per_s'))} | "
                f"{_fmt(dig(t, 'sentences_per_s'))} | {_fmt(ratio, 2)} |"
            )
    return out


def _ceiling_table(results: dict[str, Any]) -> list[str]:
    out = [
        "",
        f"## Service vs its ceiling ({CLIENTS} clients, the service's ORT settings)",
        "",
        "Ceiling: raw `OnnxBackend.run` on exactly the batches the service's batcher formed in a "
        f"{CLIENTS}-client run (recorded by `bench.recorded`, the same app and settings), in a "
        "session with the service's providers and intra-op threads, as many runs at once as "
        "the service has workers. In process: the service's Engine and Batcher driven without "
        "HTTP.",
        "",
        "| route | service, sent/s | recording service, sent/s | raw ORT on its batches, "
        "sent/s | service / ceiling | mean batch | in process (no HTTP), sent/s | mean batch |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for task, c in results.get("ceiling", {}).items():
        svc = dig(service_row(results, task, "on", CLIENTS), "sentences_per_s")
        out.append(
            f"| /{task} | {_fmt(svc)} | {_fmt(c.get('recorded_service_sentences_per_s'))} | "
            f"{_fmt(c.get('sentences_per_s'))} | {_fmt(_ratio(svc, c.get('sentences_per_s')), 2)} "
            f"| {_fmt(c.get('mean_batch_size'), 1)} | "
            f"{_fmt(dig(c, 'in_process', 'sentences_per_s'))} | "
            f"{_fmt(dig(c, 'in_process', 'mean_batch_size'), 1)} |"
        )
    return out


def _service_table(results: dict[str, Any]) -> list[str]:
    out = [
        "",
        "## Service over HTTP (closed loop, one sentence per request)",
        "",
        "`python -m app` under uvicorn on loopback, settings from the environment (batching off: "
        "`BIGRU_MAX_BATCH_SIZE=1`). Load: `bench/load.py` in its own process, so the client's "
        "CPU is not the server's: closed loop with exactly N clients, each on its own keep-alive "
        "connection sending its next sentence when its answer is in (N is the concurrency, not a "
        "guess from a rate); every request's latency recorded; bounded by time and request "
        "count; loopback only; stdlib asyncio, nothing to install. Not httpx: it costs 2-20 ms "
        "of client CPU per request (more with more connections) and became the bottleneck on 2 "
        "cores; `--load-tool httpx` reruns with it. Mean batch and ORT busy (share of wall time "
        "inside ORT runs) come from the server's /metrics; CPU columns are cores used (server "
        f"from /proc, client from getrusage). Client: {dig(results.get('plan'), 'load_tool')}.",
        "",
        "| route | batching | clients | req/s | p50 ms | p95 ms | p99 ms | mean batch "
        "| ORT busy | server CPU | client CPU | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results.get("service", {}).get("rows", []):
        lat, srv = r["latency_ms"], r["server"]
        out.append(
            f"| /{r['task']} | {r['batching']} | {r['clients']} | "
            f"{_fmt(r['requests_per_s'])} | {_fmt(lat['p50'], 1)} | {_fmt(lat['p95'], 1)} "
            f"| {_fmt(lat['p99'], 1)} | {_fmt(srv['mean_batch_size'], 1)} | "
            f"{_fmt(srv['ort_busy'], 2)} | {_fmt(srv['cpu'], 2)} | "
            f"{_fmt(r['client_cpu'], 2)} | {r['errors']} |"
        )
    return out


def _peer_table(results: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    teacher = dig(results.get("peer"), "teacher")
    if not teacher:
        return []
    r = summary["ratios"]
    svc = dig(service_row(results, "embed", "on", CLIENTS), "sentences_per_s")
    settings = results.get("service_settings") or {}
    how = f"HTTP, {settings.get('workers')} workers x {settings.get('intra_op_threads')} ORT thread"
    name = f"all-MiniLM-L6-v2, ORT, batch {teacher['batch_size']}, {teacher['threads']} threads"
    rounds = teacher.get("rounds_sentences_per_s")
    if rounds:
        each = " and ".join(f"{v:,.0f}" for v in rounds)
        name += f" (mean of the runs just before and after the lists run: {each})"
    rows = [(name, teacher["sentences_per_s"], 1.0)]
    lists = dig(results.get("service"), "lists")
    if lists:
        ours = (
            f"/embed service, {lists['clients']} clients x {lists['per_request']} sentences "
            f"per request ({how})"
        )
        rows.append((ours, lists["sentences_per_s"], r["embed_vs_teacher"]))
    ours = f"/embed service, {CLIENTS} clients x 1 sentence per request ({how})"
    rows.append((ours, svc, r["embed_single_vs_teacher"]))
    for B in (32, 128):
        row = engine_row(results, "ort", "embed", B)
        if row:
            name = f"our embed path, raw ORT, batch {B}, {row['threads']} threads"
            rows.append((name, row["sentences_per_s"], r[f"ort_embed_b{B}_vs_teacher"]))
    out = [
        "",
        "## Peer: all-MiniLM-L6-v2 (the teacher) on ONNX Runtime",
        "",
        "| what | sentences/s | x teacher |",
        "|---|---|---|",
    ]
    out += [f"| {name} | {_fmt(v)} | {_fmt(x, 1)} |" for name, v, x in rows]
    return out


def _physical_table(results: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    f = dig(results.get("flops"), "per_path")
    if not f:
        return []
    peak = results.get("peak", {})
    out = [
        "",
        "## Physical limit",
        "",
        f"FLOPs per piece: tag {f['tag']['piece'] / 1e6:.2f} M, embed "
        f"{f['embed']['piece'] / 1e6:.2f} M (+ {f['embed']['sentence'] / 1e6:.2f} M per "
        "sentence); GRU `2 * 3H * (I + H)` per direction per piece, weights `2 * K * N` per "
        f"row. Dense float32 matmul ({dig(peak, 'as_is', 'n')}^2, numpy): "
        f"{_fmt(dig(peak, 'as_is', 'gflops'), 1)} GFLOP/s as configured, "
        f"{_fmt(dig(peak, 'single_thread', 'gflops'), 1)} on one thread (the better of the two is "
        "the all-threads limit). Useful FLOPs count real pieces only, not pads; the service's "
        "pieces/s is its sentences/s times the corpus mean, as requests cycle through it.",
        "",
        "| path | measured | pieces/s | useful GFLOP/s | peak GFLOP/s | share of peak |",
        "|---|---|---|---|---|---|",
    ]
    for r in summary["physical"]:
        share = _fmt(None if r["share"] is None else 100 * r["share"], 1)
        out.append(
            f"| {r['task']} | {r['what']} | {_fmt(r['pieces_per_s'])} | "
            f"{_fmt(r['gflops'], 2)} | {_fmt(r['peak_gflops'], 1)} | {share} % |"
        )
    return out


def _bounds_section(summary: dict[str, Any]) -> list[str]:
    b = summary.get("bounds") or {}
    if not b:
        return []
    out = ["", "## What bounds the targets (from this run's figures)", ""]
    for task in ("tag", "embed"):
        t = b.get(task) or {}
        share = t.get("torch_b32_peak_share")
        total, ort = t.get("server_cpu_ms_per_request"), t.get("ort_cpu_ms_per_sentence")
        rest, bound = t.get("front_end_cpu_ms_per_request"), t.get("ceiling_share_bound")
        gain = t.get("ort_b32_over_b1")
        out.append(
            f"- /{task} vs its ceiling: the service spends {_fmt(total, 2)} CPU-ms per request "
            f"at {CLIENTS} clients, ORT {_fmt(ort, 2)} per sentence in the ceiling: the rest "
            "(HTTP, JSON, tokenizing, decoding, queueing, and ORT slowed by sharing the cores) "
            f"takes {_fmt(rest, 2)}, so even with both cores always busy the service reaches at "
            f"most {_fmt(bound, 2)} of the ceiling. Batching: ORT alone gains {_fmt(gain, 2)}x "
            "from batch 1 to 32, and the front end does not batch. ORT vs PyTorch: PyTorch eager "
            f"already uses {_fmt(None if share is None else 100 * share, 1)} % of the matmul "
            f"peak at batch 32; 1.5x would need ORT at "
            f"{_fmt(None if share is None else 150 * share, 1)} %."
        )
    p = b.get("p99_tag_8") or {}
    out.append(
        f"- /tag p99 at 8 clients: closed-loop clients send again as soon as they are answered, "
        f"so the mean latency is 8 / throughput (Little's law; {_fmt(p.get('requests_per_s'))} "
        f"requests/s on {_fmt(p.get('server_cpu'), 2)} cores: the GIL serializes the Python "
        f"part) = {_fmt(p.get('mean_ms'), 1)} ms, and p99 is "
        f"{_fmt(p.get('p99_over_mean'), 2)}x the mean; p99 <= 50 ms needs about "
        f"{_fmt(p.get('requests_per_s_needed'))} requests/s at 8 clients."
    )
    return out
