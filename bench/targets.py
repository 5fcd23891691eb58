"""The targets `make bench` checks, each threshold stated here once, and what bounds them.

Pure functions of the results dict `bench.run` writes. A target is a figure or a ratio of two
figures of one run; a ratio of HTTP runs fails when either had errors (non-2xx answers, socket
errors), whatever its value; a missing measurement is n/a.
"""

import operator
from typing import Any

Row = dict[str, Any]
TASKS = ("tag", "embed")
CLIENTS = 32  # the concurrency the targets are set at
LIST_CLIENTS = 8  # one sentence per request at CLIENTS is set against lists at this many ...
PER_REQUEST = 32  # ... connections, each request a list of this many sentences
P99_CLIENTS, P99_MS = 8, 50.0  # /tag p99 latency at this many clients: at most this
ORT_OVER_TORCH = 1.5  # ORT's pieces/s over PyTorch eager's at batch 32: at least this
SINGLE_OVER_LISTS = {"tag": 0.7, "embed": 0.5}  # one sentence per request / lists, sentences/s
FRONT_END_OVER_ORT = {"tag": 0.5, "embed": 1.0}  # front-end CPU per request / ORT's: at most
DOCUMENT_OVER_LISTS = 0.8  # bench.documents: a 10k-word document's words/s over lists': at least
DOCUMENT_P99_OVER_ALONE = 3.0  # single-sentence p99 beside documents over alone: at most
SAME_AS_OFF = (1, 8)  # clients at which batching on must stay within 5% of off
BETTER_THAN_OFF = (32, 128)  # clients at which batching on must beat off
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt}
_SINGLE = f"one sentence per request ({CLIENTS} conns) / lists of {PER_REQUEST} ({LIST_CLIENTS})"
# (key, label, op, threshold); "{t}": one per task (a dict threshold: per task); op "": shown
# for information, no threshold
_TARGETS: list[tuple[str, str, str, Any]] = [
    ("ceiling_{t}", f"service /{{t}} at {CLIENTS} clients / raw ORT ceiling", ">=", 0.75),
    ("batching_{t}", f"/{{t}} batching on / off at {CLIENTS} clients", ">=", 3.0),
    ("ort_torch_{t}", "ORT / PyTorch eager, {t} path, batch 32", ">=", ORT_OVER_TORCH),
    ("p99_tag_8", f"/tag p99 latency at {P99_CLIENTS} clients (ms)", "<=", P99_MS),
    ("embed_vs_teacher", f"/embed, lists of {PER_REQUEST} / all-MiniLM-L6-v2 on ORT (batch 32)",
     ">=", 10.0),
    ("single_lists_{t}", f"/{{t}} {_SINGLE}, sentences/s, repeated text", ">=", SINGLE_OVER_LISTS),
    ("single_lists_{t}_novel", f"/{{t}} {_SINGLE}, sentences/s, novel text", "", None),
    *((f"batching_{t}_{n}_{q}", f"/{t} batching on / off at {n} client{'s' * (n > 1)}: {what}",
       op, x) for t in TASKS for n in SAME_AS_OFF
      for q, what, op, x in (("rps", "throughput", ">=", 0.95), ("p50", "p50 latency", "<=", 1.05),
                             ("p99", "p99 latency", "<=", 1.05))),
    *((f"batching_{t}_{n}_rps", f"/{t} batching on / off at {n} clients", ">", 1.0)
      for t in TASKS for n in BETTER_THAN_OFF),
    ("front_ort_{t}", f"/{{t}} front-end CPU per request / ORT CPU per sentence ({CLIENTS} "
     "clients)", "<=", FRONT_END_OVER_ORT),
    ("tag_vs_spacy", "/tag lists words/s vs the spaCy en_core_web_sm stand-in", ">=", 4.0),
]  # fmt: skip
TARGETS = [
    (key.format(t=t), label.format(t=t), op, x[t] if isinstance(x, dict) else x)
    for key, label, op, x in _TARGETS
    for t in (TASKS if "{t}" in key else ("",))
]


def dig(row: Any, *keys: Any) -> Any:
    """row[k1][k2]...; None where a level is missing."""
    for key in keys:
        row = row.get(key) if isinstance(row, dict) else None
    return row


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def find(results: dict[str, Any], phase: str, **match: Any) -> Row | None:
    """The row of a phase's rows (engine, service, single, processes) that matches."""
    rows = dig(results, phase, "rows") or []
    return next((r for r in rows if all(r.get(k) == v for k, v in match.items())), None)


def engine_row(results: dict[str, Any], engine: str, task: str, batch_size: int) -> Row | None:
    return find(results, "engine", engine=engine, task=task, batch_size=batch_size)


def service_row(results: dict[str, Any], task: str, batching: str, clients: int) -> Row | None:
    return find(results, "service", task=task, batching=batching, clients=clients)


def single_row(results: dict[str, Any], task: str, request: str, text: str) -> Row | None:
    """request "lists" or "single"; text "repeated" (EWT dev cycled) or "novel"."""
    return find(results, "single", task=task, request=request, text=text)


def cpu_ms_per_request(row: Row | None) -> float | None:
    """Server CPU-ms per answered request in a load run (server cores busy / requests per s)."""
    cpu, rps = dig(row, "server", "cpu"), dig(row, "requests_per_s")
    return 1000 * cpu / rps if cpu is not None and rps else None


def values(results: dict[str, Any], limits: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """Every target's value, and the keys whose runs had errors."""
    out: dict[str, float | None] = {}
    errored: set[str] = set()

    def put(key: str, value: float | None, *runs: Row | None) -> None:
        out[key] = value
        if any(dig(r, "errors") for r in runs):
            errored.add(key)

    sps = "sentences_per_s"
    for task in TASKS:
        on, off = (service_row(results, task, b, CLIENTS) for b in ("on", "off"))
        put(f"ceiling_{task}", ratio(dig(on, sps), dig(results, "ceiling", task, sps)))
        put(f"batching_{task}", ratio(dig(on, sps), dig(off, sps)))
        o, t = (dig(engine_row(results, e, task, 32), "pieces_per_s") for e in ("ort", "torch"))
        put(f"ort_torch_{task}", ratio(o, t))
        put(f"front_ort_{task}", dig(limits, task, "front_end_over_ort"), on)
        lists = single_row(results, task, "lists", "repeated")
        for text, suffix in (("repeated", ""), ("novel", "_novel")):
            single = single_row(results, task, "single", text)
            value = ratio(dig(single, sps), dig(lists, sps))
            put(f"single_lists_{task}{suffix}", value, single, lists)
        for n in SAME_AS_OFF + BETTER_THAN_OFF:
            on, off = (service_row(results, task, b, n) for b in ("on", "off"))
            fields = [("rps", "requests_per_s")] + [(q, "latency_ms", q) for q in ("p50", "p99")]
            for name, *keys in fields[: 3 if n in SAME_AS_OFF else 1]:
                put(f"batching_{task}_{n}_{name}", ratio(dig(on, *keys), dig(off, *keys)), on, off)
    put("p99_tag_8", dig(service_row(results, "tag", "on", P99_CLIENTS), "latency_ms", "p99"))
    teacher = dig(results, "peer", "teacher", sps)
    put("embed_vs_teacher", ratio(dig(results, "service", "lists", sps), teacher))
    lists = single_row(results, "tag", "lists", "repeated")
    spacy = dig(results, "spacy", "stand_in", "words_per_s")
    put("tag_vs_spacy", ratio(dig(lists, "words_per_s"), spacy), lists)
    return out, errored


def verdict(target: dict[str, Any]) -> str:
    """PASS, FAIL, FAIL (errors), n/a (not measured) or info (no threshold)."""
    if not target["op"]:
        return "info"
    if target["pass"] is None:
        return "n/a"
    return "PASS" if target["pass"] else "FAIL (errors)" if target["errors"] else "FAIL"


def threshold_text(target: dict[str, Any]) -> str:
    return f"{target['op']} {target['threshold']:g}" if target["op"] else "none (information)"


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """Each target with its value and verdict (pass None: not measured, or shown for
    information), the physical limit and what bounds the targets."""
    limits, rows = bounds(results), []
    found, errored = values(results, limits)
    for key, label, op, threshold in TARGETS:
        v, errors = found.get(key), key in errored
        ok = not errors and _OPS[op](v, threshold) if op and v is not None else None
        rows.append({"key": key, "label": label, "value": v, "op": op, "threshold": threshold,
                     "pass": ok, "errors": errors})  # fmt: skip
    return {"targets": rows, "physical": physical(results), "bounds": limits}


def bounds(results: dict[str, Any]) -> dict[str, Any]:
    """What limits each target, from this run's figures (None where one is missing): the
    front end's CPU per request (service less ORT in the ceiling; with the cores always busy,
    service / ceiling <= ort / (ort + front end)); ORT's own gain from batching (the front end
    does not batch); PyTorch's share of the matmul peak; single vs lists CPU per sentence; and
    the throughput the p99 target needs by Little's law (mean latency = clients / throughput).
    """
    out: dict[str, Any] = {task: _front_end(results, task) for task in TASKS}
    peak, flops = _peak_all(results), dig(results, "flops", "per_path")
    for task in TASKS:
        if (torch32 := engine_row(results, "torch", task, 32)) and flops and peak:
            useful = _gflops(flops[task], torch32["pieces_per_s"], torch32["sentences_per_s"])
            out[task]["torch_b32_peak_share"] = share = useful / peak
            out[task]["ort_peak_share_needed"] = ORT_OVER_TORCH * share
        lists = single_row(results, task, "lists", "repeated")
        lists_ms = ratio(cpu_ms_per_request(lists), dig(lists, "per_request"))
        single_ms = cpu_ms_per_request(single_row(results, task, "single", "repeated"))
        out[task] |= {"lists_cpu_ms_per_sentence": lists_ms,
                      "single_cpu_ms_per_sentence": single_ms,
                      "single_over_lists_bound": ratio(lists_ms, single_ms)}  # fmt: skip
    row = service_row(results, "tag", "on", P99_CLIENTS)
    mean, p99 = dig(row, "latency_ms", "mean"), dig(row, "latency_ms", "p99")
    needed = ratio(P99_CLIENTS * 1000 * p99, mean * P99_MS) if mean and p99 else None
    out["p99_tag_8"] = {"requests_per_s": dig(row, "requests_per_s"), "mean_ms": mean,
                        "server_cpu": dig(row, "server", "cpu"), "p99_over_mean": ratio(p99, mean),
                        "requests_per_s_needed": needed}  # fmt: skip
    return out


def _front_end(results: dict[str, Any], task: str) -> dict[str, Any]:
    """CPU-ms per request at CLIENTS, ORT's per sentence in the ceiling, and the rest."""
    cpu_s, n = (dig(results, "ceiling", task, k) for k in ("cpu_s", "sentences"))
    ort_ms = ratio(1000 * cpu_s, n) if cpu_s is not None else None
    total_ms = cpu_ms_per_request(service_row(results, task, "on", CLIENTS))
    front_ms = total_ms - ort_ms if total_ms is not None and ort_ms is not None else None
    # none below zero: the ceiling's ORT alone took more CPU than the whole service
    front = front_ms if front_ms is not None and front_ms >= 0 else None
    b1, b32 = (dig(engine_row(results, "ort", task, B), "sentences_per_s") for B in (1, 32))
    return {"server_cpu_ms_per_request": total_ms, "ort_cpu_ms_per_sentence": ort_ms,
            "front_end_cpu_ms_per_request": front_ms, "front_end_over_ort": ratio(front, ort_ms),
            "ceiling_share_bound": ratio(ort_ms, (ort_ms or 0) + front) if front else None,
            "ort_b32_over_b1": ratio(b32, b1)}  # fmt: skip


def _peak_all(results: dict[str, Any]) -> float | None:
    """The matmul peak with all threads: as configured, or one thread's if that is better (all
    threads can be slower than one when the cores are shared)."""
    found = [dig(results, "peak", k, "gflops") for k in ("as_is", "single_thread")]
    return max(filter(None, found), default=None)


def physical(results: dict[str, Any]) -> list[Row]:
    """Useful GFLOP/s (counted FLOPs x measured rates, real pieces only) as a share of the
    matmul peak: ORT alone at its best batch size, and the service at CLIENTS (its pieces/s is
    its sentences/s times the corpus mean)."""
    flops, peak, rows = dig(results, "flops", "per_path"), _peak_all(results), []
    mean_pieces, engines = (
        dig(results, "corpus", "mean_pieces") or 0,
        dig(results, "engine", "rows"),
    )
    for task in TASKS if flops else ():
        measured = []
        ort = [r for r in engines or [] if r["engine"] == "ort" and r["task"] == task]
        if best := max(ort, key=lambda r: r["pieces_per_s"], default=None):
            name = f"ORT B={best['batch_size']}, {best['threads']} threads"
            measured.append((name, best["pieces_per_s"], best["sentences_per_s"]))
        if on := service_row(results, task, "on", CLIENTS):
            s = on["sentences_per_s"]
            measured.append((f"service, {CLIENTS} clients", s * mean_pieces, s))
        for name, pieces, sentences in measured:
            gflops = _gflops(flops[task], pieces, sentences)
            rows.append({"task": task, "what": name, "pieces_per_s": pieces, "gflops": gflops,
                         "peak_gflops": peak, "share": ratio(gflops, peak)})  # fmt: skip
    return rows


def _gflops(flops: dict[str, int], pieces: float | None, sentences: float | None) -> float:
    """Useful GFLOP/s of a path at these rates: counted FLOPs per piece and per sentence."""
    return ((pieces or 0) * flops["piece"] + (sentences or 0) * flops["sentence"]) / 1e9
