"""The one report writer: progress lines, and every JSON file and Markdown table of the
benchmark; a run's Markdown puts its targets first, then the tables they come from."""

import itertools
import json
import time
from pathlib import Path
from typing import Any

from bench import targets
from bench.targets import TASKS, dig, ratio

Results = dict[str, Any]
COST_LAYERS = {  # bench.costs' stages, in the order a request meets them
    "http_parse": "HTTP parse (httptools and uvicorn's callbacks)",
    "http_write": "HTTP write (the socket send)",
    "validation": "validation (pydantic-core)",
    "tokenizing": "tokenizing (words, WordPiece, features)",
    "queue": "queue (submit, and the worker's batching outside ORT)",
    "ort": "ONNX Runtime",
    "decode": "decode (the heads' labels and scores, the CRF)",
    "assemble": "the answer's tokens, entities and sentences",
    "json": "JSON (orjson)",
    "loop_rest": "rest of the event loop (ASGI edge, handler, asyncio, log record, metrics)",
    "other_threads": "other threads (the log writer, the off-loop assembler, native threads)",
}
_COLUMNS = {  # a load run's column -> its keys in the run, and digits (None: shown as is)
    "request": ("request", None), "text": ("text", None), "batching": ("batching", None),
    "clients": ("clients", None), "tool": ("tool", None), "BIGRU_PROCESSES": ("processes", None),
    "processes": ("server_processes", 0), "req/s": ("requests_per_s", 0),
    "sent/s": ("sentences_per_s", 0), "words/s": ("words_per_s", 0),
    **{f"{q} ms": (f"latency_ms.{q}", 1) for q in ("p50", "p95", "p99")},
    "mean batch": ("server.mean_batch_size", 1), "ORT busy": ("server.ort_busy", 2),
    "server CPU": ("server.cpu", 2), "client CPU": ("client_cpu", 2), "errors": ("errors", None),
}  # fmt: skip
_LOAD_TABLES = (  # (results key, title, columns, what the runs are)
    ("service", "Service over HTTP (closed loop, one sentence per request)",
     "route | batching | clients | tool | req/s | p50 ms | p95 ms | p99 ms | mean batch | "
     "ORT busy | server CPU | client CPU | errors",
     "Batching off: `BIGRU_MAX_BATCH_SIZE=1`. Mean batch and ORT busy (share of wall time in "
     "ORT runs) from the server's /metrics; CPU in cores (server: its process tree)."),
    ("single", "One sentence per request vs lists (batching on)",
     "route | request | text | clients | tool | req/s | sent/s | words/s | p50 ms | p99 ms | "
     "server CPU | CPU-ms / sentence | errors | distinct / sent",
     f"Lists of {targets.PER_REQUEST} EWT dev sentences; repeated text: EWT dev cycled; novel: "
     "corpus sentences never sent twice. /tag words/s: the service tokenizer's words."),
    ("processes", "Server processes (one sentence per request, a fresh server per setting)",
     "route | BIGRU_PROCESSES | processes | tool | req/s | p50 ms | p99 ms | server CPU | "
     "CPU-ms / sentence | errors", ""),
)  # fmt: skip


def log(phase: str, message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {phase:8} {message}", flush=True)


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=str))
    return path


def write_run(results: Results, summary: dict[str, Any], prefix: Path) -> list[Path]:
    """`prefix`.json and `prefix`.md; each target's verdict logged."""
    for t in summary["targets"]:
        value, threshold = fmt(t["value"], 2), t["threshold_text"]
        log("target", f"{t['verdict']:4} {t['label']}: {value} ({threshold})")
    md = write_json(prefix.with_name(prefix.name + ".json"), results).with_suffix(".md")
    md.write_text(markdown(results, summary))
    return [md.with_suffix(".json"), md]


def fmt(v: Any, digits: int = 0) -> str:
    if v is None:
        return "n/a"
    return f"{v:,.{digits}f}" if isinstance(v, float | int) else str(v)


def table(header: str, rows: list[list[Any]]) -> list[str]:
    """A Markdown table; the header's columns are separated by " | "."""
    out = [f"| {header} |", "|" + "---|" * (header.count(" | ") + 1)]
    return out + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def _section(title: str, intro: str, header: str, rows: list[list[Any]]) -> list[str]:
    """A titled table with an optional paragraph; no rows: no section."""
    if not rows:
        return []
    return ["", f"## {title}", "", *([intro, ""] if intro else []), *table(header, rows)]


def _cell(r: dict[str, Any], column: str) -> Any:
    """A load run's cell in a `_COLUMNS` column, or route, CPU-ms or distinct / sent."""
    if column == "route":
        return f"/{r['task']}"
    if column == "CPU-ms / sentence":  # the server's CPU per answered sentence
        return fmt(ratio(targets.cpu_ms_per_request(r), r["per_request"]), 2)
    if column == "distinct / sent":
        return f"{fmt(r.get('distinct_bodies'))} / {fmt(r.get('requests_sent'))}"
    keys, digits = _COLUMNS[column]
    value = dig(r, *keys.split("."))
    return value if digits is None else fmt(value, digits)


def markdown(results: Results, summary: dict[str, Any]) -> str:
    """The human summary: targets first, then every table the targets come from."""
    meta, machine, corpus = (results.get(k) or {} for k in ("meta", "machine", "corpus"))
    out = [
        f"# bigru-serve benchmark, {meta.get('date')} on {meta.get('host')}",
        "",
        f"{machine.get('cpu')}, {machine.get('cores')} cores; load average at start "
        f"{fmt(machine.get('loadavg_start'), 2)}; onnxruntime {machine.get('onnxruntime')}, "
        f"torch {machine.get('torch')}, numpy {machine.get('numpy')}. Model "
        f"`{meta.get('model_dir')}`, commit {meta.get('git')}. Sentences: "
        f"{corpus.get('sentences')} EWT dev `# text` lines, {fmt(corpus.get('mean_pieces'), 1)} "
        f"WordPiece pieces on average. HTTP load: {dig(results, 'plan', 'load_tool')}.",
        *(f"\n> {note}" for note in results.get("notes", [])),
    ]
    rows = [[t["label"], fmt(t["value"], 2), t["threshold_text"], t["verdict"]]
            for t in summary["targets"]]  # fmt: skip
    out += _section("Targets", "", "target | measured | threshold | result", rows)
    out += _engine(results)
    for key, title, header, intro in _LOAD_TABLES:
        runs = [[_cell(r, c) for c in header.split(" | ")] for r in dig(results, key, "rows") or []]
        out += _section(title, intro, header, runs)
    out += _costs(results) + _peers(results) + _bounds(results, summary)
    if results.get("errors"):
        out += ["", "## Errors", ""] + [f"- {k}: {v}" for k, v in results["errors"].items()]
    return "\n".join(out) + "\n"


def _engine(results: Results) -> list[str]:
    rows, sizes = [], sorted({r["batch_size"] for r in dig(results, "engine", "rows") or []})
    for task, B in itertools.product(TASKS, sizes):
        if any(found := [targets.engine_row(results, e, task, B) for e in ("ort", "torch")]):
            rates = [dig(r, k) for r in found for k in ("pieces_per_s", "sentences_per_s")]
            rows.append([task, B, *map(fmt, rates), fmt(ratio(rates[0], rates[2]), 2)])
    header = "path | batch | ORT pieces/s | ORT sent/s | PyTorch pieces/s | PyTorch sent/s"
    notes = "\n".join(f"- {n}" for n in dig(results, "engine", "notes") or [])
    title = "Engine: ONNX Runtime vs PyTorch eager (threads = cores)"
    return _section(title, notes, header + " | ORT / PyTorch", rows)


def _costs(results: Results) -> list[str]:
    """bench.costs' layers per sentence, its projection, the 1-client p50 and idle RSS."""
    if not (costs := results.get("costs")):
        return []
    runs = [costs["runs"][k] for k in ("tag.single", "tag.lists", "embed.single", "embed.lists")]
    rows = [[label, *(f"{r['ms'].get(name, 0.0) / r['per_request']:.3f}" for r in runs)]
            for name, label in COST_LAYERS.items()]  # fmt: skip
    rows.append(["**total (the process's CPU)**",
                 *(f"**{r['total_ms'] / r['per_request']:.3f}**" for r in runs)])  # fmt: skip
    header = "layer | /tag, 1 sentence per request | /tag lists of 32, per sentence"
    header += " | /embed, 1 sentence per request | /embed lists of 32, per sentence"
    out = _section("What a request costs, layer by layer (server CPU-ms, 1 process)", "",
                   header, rows)  # fmt: skip
    single = {t: costs["runs"][f"{t}.single"]["total_ms"] for t in TASKS}
    cells = [[n, *(fmt(n * 1000 / single[t]) for t in TASKS)] for n in (2, 4, 8, 16)]
    out += ["", "One-sentence req/s with a process per core, CPU-bound (a projection):", ""]
    out += table("cores | /tag | /embed", cells)
    for task in TASKS:
        lists = costs["runs"][f"{task}.lists"]
        d, one = (costs["p50_ms"][f"{setting}.{task}"] for setting in ("default", "1 process"))
        rounds = len(costs["p50_rounds"][f"default.{task}"])
        tends = lists["total_ms"] / lists["per_request"] / single[task]
        out.append(f"\n/{task}: with every core busy, single / lists tends to "
                   f"{tends:.2f}, the ratio of their CPU per sentence. "
                   f"1-client p50: defaults {d:.2f} ms, 1 process {one:.2f} ms ({d / one:.2f}x;"
                   f" median of {rounds} alternating rounds).")  # fmt: skip
    for name, sizes in costs["idle_rss_mb"].items():
        parent = " (the first is the parent)" if len(sizes) > 1 else ""
        out.append(f"\nIdle RSS, {name}: {', '.join(f'{mb:.0f} MB' for mb in sizes)}{parent}.")
    return out


def _peers(results: Results) -> list[str]:
    """/embed lists against the teacher, /tag lists against en_core_web_sm and its stand-in
    (peers.py)."""
    teacher, spacy = dig(results, "peer", "teacher"), results.get("spacy") or {}
    embed, stand_in, sm = dig(results, "service", "lists"), spacy.get("stand_in"), spacy.get("sm")
    tag = targets.single_row(results, "tag", "lists", "repeated")
    x_teacher = ratio(dig(embed, "sentences_per_s"), dig(teacher, "sentences_per_s"))
    x_spacy = ratio(dig(tag, "words_per_s"), dig(stand_in, "words_per_s"))
    x_sm = ratio(dig(tag, "words_per_s"), dig(sm, "words_per_s"))
    rows = [[what, fmt(dig(r, "sentences_per_s")), fmt(dig(r, "words_per_s")), fmt(cores, 2),
             fmt(x, 2)] for what, r, cores, x in (
        ("all-MiniLM-L6-v2 on ORT, batch 32 (mean of the runs either side of /embed's)", teacher,
         dig(teacher, "threads"), 1.0),
        (f"/embed, lists of {targets.PER_REQUEST}", embed, dig(embed, "server", "cpu"), x_teacher),
        (f"spaCy {spacy.get('version')} en_core_web_sm stand-in", stand_in,
         dig(stand_in, "cores"), 1.0),
        (f"/tag, lists of {targets.PER_REQUEST}", tag if stand_in else None,
         dig(tag, "server", "cpu"), x_spacy),
        (f"spaCy en_core_web_sm {dig(sm, 'version')}, raw text, its whole pipeline", sm,
         dig(sm, "cores"), 1.0),
        (f"/tag, lists of {targets.PER_REQUEST}, every head", tag if sm else None,
         dig(tag, "server", "cpu"), x_sm),
    ) if r]  # fmt: skip
    intro = f"The stand-in: {'; '.join(spacy.get('sm_overrides', []))}; untrained." * bool(spacy)
    return _section("Peers: what users would run instead", intro,
                    "what | sentences/s | words/s | cores | x the peer above", rows)  # fmt: skip


def _bounds(results: Results, summary: dict[str, Any]) -> list[str]:
    """targets.bounds' figures (the reasoning: bench/README.md), with FLOPs and the peak."""
    rows = [[label, *(fmt(by[t], 2) for t in TASKS)] for label, by in summary["bounds"].items()]
    f, peak = dig(results, "flops", "per_path") or {}, results.get("peak")
    units = (("tag", "piece"), ("embed", "piece"), ("embed", "sentence"))
    tag, embed, sentence = (dig(f, *unit) or 0 for unit in units)
    intro = (
        f"FLOPs per piece (bench/probes/flops.py): tag {tag / 1e6:.2f} M, embed "
        f"{embed / 1e6:.2f} M + {sentence / 1e6:.2f} M per sentence. "
        f"Matmul peak ({fmt(dig(peak, 'as_is', 'n'))}^2 float32): "
        f"{fmt(dig(peak, 'as_is', 'gflops'), 1)} GFLOP/s, "
        f"{fmt(dig(peak, 'single_thread', 'gflops'), 1)} on one thread."
    )
    title = "What bounds the targets (from this run's figures)"
    return _section(title, intro, "bound | /tag | /embed", rows)
