"""The one report writer: progress lines, and every JSON, Markdown table and PNG plot of the
benchmark. A run's Markdown puts its targets first, then every table they come from, the
physical limit and what bounds each target (`targets.summarize` computes them).
"""

import itertools
import json
import time
from pathlib import Path
from typing import Any

from bench import targets
from bench.targets import CLIENTS, TASKS, dig, ratio

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
    "other_threads": "other threads (the log writer)",
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
_BOUNDS = {  # targets.bounds' figures, per route; its docstring gives the reasoning
    "server_cpu_ms_per_request": f"server CPU-ms per request, {CLIENTS} clients",
    "ort_cpu_ms_per_sentence": "ORT CPU-ms per sentence in the ceiling",
    "front_end_cpu_ms_per_request": "the rest: front end CPU-ms per request",
    "ceiling_share_bound": "so service / ceiling at most (both cores busy)",
    "ort_b32_over_b1": "ORT alone, batch 32 / batch 1 (the front end does not batch)",
    "torch_b32_peak_share": "PyTorch eager's share of the matmul peak at batch 32",
    "ort_peak_share_needed": f"ORT's share needed for {targets.ORT_OVER_TORCH:g}x PyTorch",
    "single_cpu_ms_per_sentence": "server CPU-ms per sentence, one per request",
    "lists_cpu_ms_per_sentence": "server CPU-ms per sentence, lists",
    "single_over_lists_bound": "so single / lists at most (cores as busy in both)",
}


def log(phase: str, message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {phase:8} {message}", flush=True)


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=str))
    return path


def write_run(results: Results, summary: dict[str, Any], prefix: Path) -> list[Path]:
    """`prefix`.json, `prefix`-*.png and `prefix`.md; each target's verdict logged."""
    written = [write_json(prefix.with_name(prefix.name + ".json"), results), *plot(results, prefix)]
    written.append(prefix.with_name(prefix.name + ".md"))
    written[-1].write_text(markdown(results, summary, [p.name for p in written[1:-1]]))
    for t in summary["targets"]:
        value, threshold = fmt(t["value"], 2), targets.threshold_text(t)
        log("target", f"{targets.verdict(t):4} {t['label']}: {value} ({threshold})")
    return written


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


def markdown(results: Results, summary: dict[str, Any], plots: list[str]) -> str:
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
    rows = [[t["label"], fmt(t["value"], 2), targets.threshold_text(t), targets.verdict(t)]
            for t in summary["targets"]]  # fmt: skip
    out += _section("Targets", "", "target | measured | threshold | result", rows)
    out += _engine(results) + _ceiling(results)
    for key, title, header, intro in _LOAD_TABLES:
        runs = [[_cell(r, c) for c in header.split(" | ")] for r in dig(results, key, "rows") or []]
        out += _section(title, intro, header, runs)
    out += _gains(results) + _costs(results) + _peers(results) + _physical(results, summary)
    out += _bounds(summary)
    if results.get("errors"):
        out += ["", "## Errors", ""] + [f"- {k}: {v}" for k, v in results["errors"].items()]
    return "\n".join([*out, "", *(f"![{p}]({p})" for p in plots)]) + "\n"


def _gains(results: Results) -> list[str]:
    """Requests/s with the most server processes over the fewest."""
    settings, runs = dig(results, "processes", "settings") or [], dig(results, "processes", "rows")
    if not runs or len(settings) < 2:
        return []
    rps = {(r["task"], r["processes"]): r["requests_per_s"] for r in runs}
    a, b = settings[0], settings[-1]
    gains = [f"/{t} {fmt(ratio(rps.get((t, b)), rps.get((t, a))), 2)}x" for t in TASKS]
    return ["", f"Requests/s, {b} processes over {a}: {', '.join(gains)}."]


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


def _ceiling(results: Results) -> list[str]:
    rows = []
    for task, c in (results.get("ceiling") or {}).items():
        svc = dig(targets.service_row(results, task, "on", CLIENTS), "sentences_per_s")
        rows.append([f"/{task}", fmt(svc), fmt(c["recorded_service_sentences_per_s"]),
                     fmt(c["sentences_per_s"]), fmt(ratio(svc, c["sentences_per_s"]), 2),
                     fmt(c["mean_batch_size"], 1)])  # fmt: skip
    header = "route | service, sent/s | recording service, sent/s | raw ORT on its batches, sent/s"
    title = f"Service vs its ceiling, raw ORT on the batches it formed ({CLIENTS} clients)"
    return _section(title, "", header + " | service / ceiling | mean batch", rows)


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
    """/embed lists against the teacher, /tag lists against the spaCy stand-in (peers.py)."""
    teacher, spacy = dig(results, "peer", "teacher"), results.get("spacy") or {}
    embed, rows = dig(results, "service", "lists"), []
    tag = targets.single_row(results, "tag", "lists", "repeated")
    if teacher:
        each = " and ".join(f"{v:,.0f}" for v in teacher["rounds_sentences_per_s"])
        rows.append([f"all-MiniLM-L6-v2 on ORT, batch 32 (the runs either side: {each})",
                     fmt(teacher["sentences_per_s"]), "", teacher["threads"], "1.00"])  # fmt: skip
    if embed:
        x = ratio(embed["sentences_per_s"], dig(teacher, "sentences_per_s"))
        rows.append([f"/embed, {embed['clients']} clients x {embed['per_request']} sentences",
                     fmt(embed["sentences_per_s"]), "", fmt(dig(embed, "server", "cpu"), 2),
                     fmt(x, 2)])  # fmt: skip
    if stand_in := spacy.get("stand_in"):
        rows.append([f"spaCy {spacy['version']} en_core_web_sm stand-in, batch "
                     f"{stand_in['batch_size']}", fmt(stand_in["sentences_per_s"]),
                     fmt(stand_in["words_per_s"]), fmt(stand_in["cores"], 2), "1.00"])  # fmt: skip
    if tag and stand_in:
        rows.append([f"/tag, {tag['clients']} clients x {tag['per_request']} sentences",
                     fmt(tag["sentences_per_s"]), fmt(tag.get("words_per_s")),
                     fmt(dig(tag, "server", "cpu"), 2),
                     fmt(ratio(tag.get("words_per_s"), stand_in["words_per_s"]), 2)])  # fmt: skip
    intro = (f"The stand-in: {'; '.join(spacy.get('sm_overrides', []))}; untrained: speed only."
             if spacy else "")  # fmt: skip
    out = _section("Peers: what users would run instead", intro,
                   "what | sentences/s | words/s | cores | x the peer above", rows)  # fmt: skip
    if spacy.get("config"):
        out += ["", "<details><summary>The stand-in's config</summary>", "", "```ini"]
        out += [spacy["config"].strip(), "```", "", "</details>"]
    return out


def _physical(results: Results, summary: dict[str, Any]) -> list[str]:
    if not (f := dig(results, "flops", "per_path")):
        return []
    peak = results.get("peak")
    intro = (
        f"FLOPs per piece (bench/probes/flops.py): tag {f['tag']['piece'] / 1e6:.2f} M, embed "
        f"{f['embed']['piece'] / 1e6:.2f} M + {f['embed']['sentence'] / 1e6:.2f} M per sentence. "
        f"Matmul peak ({dig(peak, 'as_is', 'n')}^2 float32): {fmt(dig(peak, 'as_is', 'gflops'), 1)}"
        f" GFLOP/s, {fmt(dig(peak, 'single_thread', 'gflops'), 1)} on one thread."
    )
    rows = [[r["task"], r["what"], fmt(r["pieces_per_s"]), fmt(r["gflops"], 2),
             fmt(r["peak_gflops"], 1), fmt(r["share"] and 100 * r["share"], 1) + " %"]
            for r in summary["physical"]]  # fmt: skip
    header = "path | measured | pieces/s | useful GFLOP/s | peak GFLOP/s | share of peak"
    return _section("Physical limit", intro, header, rows)


def _bounds(summary: dict[str, Any]) -> list[str]:
    if not (b := summary.get("bounds")):
        return []
    rows = [[label, *(fmt(b[t].get(key), 2) for t in TASKS)] for key, label in _BOUNDS.items()]
    out = _section("What bounds the targets (from this run's figures)", "",
                   "bound | /tag | /embed", rows)  # fmt: skip
    p, n = b["p99_tag_8"], targets.P99_CLIENTS
    out.append(
        f"\n/tag p99 at {n} clients: closed-loop clients send again once answered, so the mean "
        f"latency is {n} / throughput (Little's law; {fmt(p['requests_per_s'])} requests/s on "
        f"{fmt(p['server_cpu'], 2)} cores) = {fmt(p['mean_ms'], 1)} ms, and p99 is "
        f"{fmt(p['p99_over_mean'], 2)}x the mean; p99 <= {targets.P99_MS:g} ms needs about "
        f"{fmt(p['requests_per_s_needed'])} requests/s."
    )
    return out


def plot(results: Results, prefix: Path) -> list[Path]:
    """Service throughput (against the ceiling) and latency (against the p99 target) by clients,
    batching on and off: `prefix`-throughput.png and -latency.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, written = dig(results, "service", "rows") or [], []
    for name in ("throughput", "latency") if rows else ():
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax, task in zip(axes, TASKS, strict=True):
            _panel(ax, name, [r for r in rows if r["task"] == task])
            ceiling = dig(results, "ceiling", task, "sentences_per_s")
            if name == "throughput" and ceiling:
                ax.axhline(ceiling, color="gray", ls=":", label=f"raw ORT ceiling ({CLIENTS})")
            if name == "latency" and task == "tag":
                label = f"p99 target ({targets.P99_CLIENTS} clients)"
                ax.axhline(targets.P99_MS, color="gray", ls=":", label=label)
            ax.set(title=f"/{task} {name}", xlabel="clients")
            ax.legend(fontsize=7)
        fig.tight_layout()
        written.append(prefix.with_name(f"{prefix.name}-{name}.png"))
        fig.savefig(written[-1], dpi=110)
        plt.close(fig)
    return written


def _panel(ax: Any, name: str, rows: list[dict[str, Any]]) -> None:
    """One route: sentences/s, or p50/p95/p99 latency, by clients, batching on and off."""
    for on, ls in (("on", "-"), ("off", "--")):
        sel = sorted((r for r in rows if r["batching"] == on), key=lambda r: r["clients"])
        xs = [r["clients"] for r in sel]
        if name == "throughput":
            ys = [r["sentences_per_s"] for r in sel]
            ax.plot(xs, ys, ls=ls, marker="o", label=f"batching {on}")
        for q, marker in (("p50", "o"), ("p95", "^"), ("p99", "s")) if name == "latency" else ():
            ys = [r["latency_ms"][q] for r in sel]
            ax.plot(xs, ys, ls=ls, marker=marker, label=f"{q}, batching {on}")
    ticks = sorted({r["clients"] for r in rows})
    ax.set(ylabel="ms" if name == "latency" else "sentences/s")
    ax.set_yscale("log" if name == "latency" else "linear")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
