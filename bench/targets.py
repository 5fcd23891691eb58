"""The targets `make bench` checks, each threshold stated once here, and what bounds them: pure
functions of the results (bench/README.md)."""

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
FRONT_END_BOUND = "front end / ORT"  # the bound a target checks: FRONT_END_OVER_ORT
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
    ("tag_vs_sm", "/tag lists words/s vs spaCy en_core_web_sm 3.8, raw text", ">=", 6.0),
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
        put(f"front_ort_{task}", dig(limits, FRONT_END_BOUND, task), on)
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
    sm = dig(results, "spacy", "sm", "words_per_s")
    put("tag_vs_sm", ratio(dig(lists, "words_per_s"), sm), lists)
    return out, errored


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """Each target with its value, threshold and verdict (PASS, FAIL, FAIL (errors), n/a: not
    measured, info: no threshold), and what bounds the targets."""
    limits, rows = bounds(results), []
    found, errored = values(results, limits)
    for key, label, op, x in TARGETS:
        v, errors = found.get(key), key in errored
        ok = not errors and _OPS[op](v, x) if op and v is not None else None
        verdict = "info" if not op else "n/a" if ok is None else "PASS" if ok else "FAIL"
        rows.append({"key": key, "label": label, "value": v, "op": op, "threshold": x, "pass": ok,
                     "errors": errors, "verdict": verdict + " (errors)" * (errors and ok is False),
                     "threshold_text": f"{op} {x:g}" if op else "none (information)"})  # fmt: skip
    return {"targets": rows, "bounds": limits}


def bounds(results: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """What limits each target, by route, from this run's figures (None where one is missing;
    the reasoning: bench/README.md)."""
    per_task = {task: _bounds(results, task) for task in TASKS}
    return {label: {t: per_task[t][label] for t in TASKS} for label in per_task["tag"]}


def _bounds(results: dict[str, Any], task: str) -> dict[str, float | None]:
    ceiling, peak = dig(results, "ceiling", task) or {}, _peak_all(results)
    ort_ms = ratio(1000 * ceiling["cpu_s"], ceiling["sentences"]) if "cpu_s" in ceiling else None
    total_ms = cpu_ms_per_request(service_row(results, task, "on", CLIENTS))
    front = total_ms - ort_ms if total_ms is not None and ort_ms is not None else None
    share = {}
    for engine in ("ort", "torch"):  # useful FLOP/s at batch 32 over the matmul peak
        row, flops = engine_row(results, engine, task, 32), dig(results, "flops", "per_path", task)
        useful = (
            _gflops(flops, row["pieces_per_s"], row["sentences_per_s"]) if row and flops else None
        )
        share[engine] = ratio(useful, peak)
    b1, b32 = (dig(engine_row(results, "ort", task, B), "sentences_per_s") for B in (1, 32))
    lists = single_row(results, task, "lists", "repeated")
    lists_ms = ratio(cpu_ms_per_request(lists), dig(lists, "per_request"))
    single_ms = cpu_ms_per_request(single_row(results, task, "single", "repeated"))
    row = service_row(results, task, "on", P99_CLIENTS)
    mean, p99 = dig(row, "latency_ms", "mean"), dig(row, "latency_ms", "p99")
    needed = ratio(P99_CLIENTS * 1000 * p99, mean * P99_MS) if mean and p99 else None
    positive = front is not None and ort_ms is not None and front > 0  # else ORT took it all
    needed_share = ORT_OVER_TORCH * (share["torch"] or 0)
    return {
        f"the ceiling at {CLIENTS} clients: raw ORT, sentences/s": ceiling.get("sentences_per_s"),
        "the ceiling's mean batch": ceiling.get("mean_batch_size"),
        f"server CPU-ms per request, {CLIENTS} clients": total_ms,
        "ORT CPU-ms per sentence in the ceiling": ort_ms,
        "the rest: front end CPU-ms per request": front,
        FRONT_END_BOUND: ratio(front, ort_ms) if front is not None and front >= 0 else None,
        "so service / ceiling at most": ratio(ort_ms, ort_ms + front) if positive else None,
        "ORT alone, batch 32 / batch 1": ratio(b32, b1),
        "ORT's share of the matmul peak, batch 32": share["ort"],
        "PyTorch's share of the matmul peak, batch 32": share["torch"],
        f"ORT's share for {ORT_OVER_TORCH:g}x PyTorch": share["torch"] and needed_share,
        "server CPU-ms per sentence, one per request": single_ms,
        "server CPU-ms per sentence, lists": lists_ms,
        "so single / lists at most": ratio(lists_ms, single_ms),
        f"req/s at {P99_CLIENTS} clients": dig(row, "requests_per_s"),
        f"p99 / mean latency at {P99_CLIENTS} clients": ratio(p99, mean),
        f"req/s that p99 <= {P99_MS:g} ms needs there": needed,
    }  # fmt: skip


def _peak_all(results: dict[str, Any]) -> float | None:
    """The matmul peak with all threads: as configured, or one thread's if that is better (all
    threads can be slower than one when the cores are shared)."""
    found = [dig(results, "peak", k, "gflops") for k in ("as_is", "single_thread")]
    return max(filter(None, found), default=None)


def _gflops(flops: dict[str, int], pieces: float | None, sentences: float | None) -> float:
    """Useful GFLOP/s of a path at these rates: counted FLOPs per piece and per sentence."""
    return ((pieces or 0) * flops["piece"] + (sentences or 0) * flops["sentence"]) / 1e9
