"""The one report writer: the Markdown summary of a run (targets first, then every table the
targets come from, the physical limit and what bounds each target) and its PNG plots.

Pure functions of the results dict `bench.run` writes and of its summary (summary.py).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.rows import (
    CLIENTS,
    LIST_CLIENTS,
    PER_REQUEST,
    cpu_ms_per_request,
    dig,
    engine_row,
    fmt,
    processes_row,
    ratio,
    service_row,
    single_row,
)
from bench.summary import threshold_text, verdict

Results = dict[str, Any]
TASKS = ("tag", "embed")


def markdown(results: Results, summary: dict[str, Any], plots: list[str]) -> str:
    """The human summary: targets first, then every table the targets come from."""
    meta, machine, corpus = (results.get(k, {}) for k in ("meta", "machine", "corpus"))
    out = [f"# bigru-serve benchmark, {meta.get('date')} on {meta.get('host')}", ""]
    out.append(
        f"{machine.get('cpu')}, {machine.get('cores')} cores; load average at start "
        f"{fmt(machine.get('loadavg_start'), 2)}; onnxruntime {machine.get('onnxruntime')}, "
        f"torch {machine.get('torch')}, numpy {machine.get('numpy')}. Model "
        f"`{meta.get('model_dir')}`, commit {meta.get('git')}. Sentences: "
        f"{corpus.get('sentences')} EWT dev `# text` lines, {fmt(corpus.get('mean_pieces'), 1)} "
        f"WordPiece pieces on average. HTTP load: {dig(results.get('plan'), 'load_tool')}."
    )
    out += [f"\n> {note}" for note in results.get("notes", [])]
    rows = [
        [t["label"], fmt(t["value"], 2), threshold_text(t), verdict(t)] for t in summary["targets"]
    ]
    out += _table("Targets", "", "target | measured | threshold | result", rows)
    for section in (_engine, _ceiling, _service, _single, _processes):
        out += section(results)
    if "markdown" in results.get("costs", {}):
        out += ["", results["costs"]["markdown"]]
    for section in (_peer, _spacy, _physical, _bounds):
        out += section(results, summary)
    if results.get("errors"):
        out += ["", "## Errors", ""] + [f"- {k}: {v}" for k, v in results["errors"].items()]
    out += [""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(out) + "\n"


def _table(title: str, intro: str, header: str, rows: list[list[Any]]) -> list[str]:
    """A section: its title, an optional paragraph, and a table (no rows: no section); the
    header's columns are separated by " | "."""
    if not rows:
        return []
    out = ["", f"## {title}", ""] + ([intro, ""] if intro else [])
    out += [f"| {header} |", "|" + "---|" * (header.count(" | ") + 1)]
    return out + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def _latency(r: dict[str, Any], *quantiles: str) -> list[str]:
    return [fmt(r["latency_ms"][q], 1) for q in quantiles]


def _engine(results: Results) -> list[str]:
    section = results.get("engine", {})
    rows = []
    for task in TASKS:
        for B in sorted({r["batch_size"] for r in section.get("rows", []) if r["task"] == task}):
            o, t = engine_row(results, "ort", task, B), engine_row(results, "torch", task, B)
            rates = [fmt(dig(x, k)) for x in (o, t) for k in ("pieces_per_s", "sentences_per_s")]
            x = ratio(dig(o, "pieces_per_s"), dig(t, "pieces_per_s"))
            rows.append([task, B, *rates, fmt(x, 2)])
    header = "path | batch | ORT pieces/s | ORT sent/s | PyTorch pieces/s | PyTorch sent/s"
    header += " | ORT / PyTorch"
    notes = "\n".join(f"- {n}" for n in section.get("notes", []))
    return _table("Engine: ONNX Runtime vs PyTorch eager (threads = cores)", notes, header, rows)


def _ceiling(results: Results) -> list[str]:
    rows = []
    for task, c in results.get("ceiling", {}).items():
        svc = dig(service_row(results, task, "on", CLIENTS), "sentences_per_s")
        sps = c.get("sentences_per_s")
        rows.append(
            [f"/{task}", fmt(svc), fmt(c.get("recorded_service_sentences_per_s")), fmt(sps)]
            + [fmt(ratio(svc, sps), 2), fmt(c.get("mean_batch_size"), 1)]
        )
    intro = (
        "Ceiling: raw `OnnxBackend.run` on exactly the batches the service's batcher formed in "
        f"a {CLIENTS}-client run (recorded by `bench.recorded`, the service with a backend that "
        "keeps its batches), in a session with the service's settings, as many runs at once as "
        "it has workers."
    )
    header = "route | service, sent/s | recording service, sent/s | raw ORT on its batches, sent/s"
    header += " | service / ceiling | mean batch"
    return _table(f"Service vs its ceiling ({CLIENTS} clients)", intro, header, rows)


def _service(results: Results) -> list[str]:
    rows = [
        [f"/{r['task']}", r["batching"], r["clients"], r.get("tool"), fmt(r["requests_per_s"])]
        + _latency(r, "p50", "p95", "p99")
        + [fmt(r["server"][k], n) for k, n in (("mean_batch_size", 1), ("ort_busy", 2))]
        + [fmt(r["server"]["cpu"], 2), fmt(r["client_cpu"], 2), r["errors"]]
        for r in results.get("service", {}).get("rows", [])
    ]
    intro = (
        "`python -m app` on loopback (batching off: `BIGRU_MAX_BATCH_SIZE=1`), loaded closed "
        "loop from its own process: exactly N connections, each sending its next request when "
        "its answer is in. `wrk` (bench/wrk.lua) where installed, a few percent of a core; else "
        "bench/load.py's stdlib client (`python`), up to a core of its own. Mean batch and ORT "
        "busy (share of wall time inside ORT runs) come from the server's /metrics; CPU columns "
        "are cores used (server: its process tree from /proc)."
    )
    header = "route | batching | clients | tool | req/s | p50 ms | p95 ms | p99 ms | mean batch"
    header += " | ORT busy | server CPU | client CPU | errors"
    return _table("Service over HTTP (closed loop, one sentence per request)", intro, header, rows)


def _single(results: Results) -> list[str]:
    rows = []
    for r in results.get("single", {}).get("rows", []):
        per_sentence = ratio(cpu_ms_per_request(r), r["per_request"])
        rows.append(
            [f"/{r['task']}", r["request"], r["text"], r["clients"], r.get("tool")]
            + [fmt(r[k]) for k in ("requests_per_s", "sentences_per_s")]
            + [fmt(r.get("words_per_s")), *_latency(r, "p50", "p99")]
            + [fmt(dig(r, "server", "cpu"), 2), fmt(per_sentence, 2), r["errors"]]
            + [f"{fmt(r.get('distinct_bodies'))} / {fmt(r.get('requests_sent'))}"]
        )
    intro = (
        f"Lists: {LIST_CLIENTS} connections, each request {PER_REQUEST} consecutive EWT dev "
        f"sentences. One sentence per request: {CLIENTS} connections, on repeated text (EWT dev "
        "cycled: the tokenizer's caches are warm) and on novel text (corpus lines in neither EWT "
        "dev nor train, each sent at most once: `distinct / sent` shows it). Words/s for /tag: "
        "requests/s times the tokens the service's tokenizer makes of the bodies."
    )
    header = "route | request | text | conns | tool | req/s | sent/s | words/s | p50 ms | p99 ms"
    header += " | server CPU | CPU-ms / sentence | errors | distinct / sent"
    return _table("One sentence per request vs lists (batching on)", intro, header, rows)


def _processes(results: Results) -> list[str]:
    settings = results.get("processes", {}).get("settings", [])
    rows = []
    for task in TASKS:
        for n in settings:
            r = processes_row(results, task, n)
            if r is not None:
                rows.append(
                    [f"/{task}", n, fmt(r.get("server_processes")), r.get("tool")]
                    + [fmt(r["requests_per_s"]), *_latency(r, "p50", "p99")]
                    + [fmt(dig(r, "server", "cpu"), 2), fmt(cpu_ms_per_request(r), 2), r["errors"]]
                )
    intro = (
        f"One sentence per request at {CLIENTS} connections, repeated text, a fresh server per "
        "setting. Server CPU is summed over its process tree; `processes` counts that tree."
    )
    header = "route | BIGRU_PROCESSES | processes | tool | req/s | p50 ms | p99 ms | server CPU"
    out = _table("Server processes", intro, header + " | CPU-ms / request | errors", rows)
    if rows and len(settings) > 1:
        a, b = settings[0], settings[-1]
        rps = {
            n: {t: dig(processes_row(results, t, n), "requests_per_s") for t in TASKS}
            for n in (a, b)
        }
        gains = [f"/{t} {fmt(ratio(rps[b][t], rps[a][t]), 2)}x" for t in TASKS]
        out += ["", f"Requests/s, {b} processes over {a}: {', '.join(gains)}."]
    return out


def _peer(results: Results, summary: dict[str, Any]) -> list[str]:
    teacher = dig(results.get("peer"), "teacher")
    if not teacher:
        return []
    r, settings = summary["ratios"], results.get("service_settings") or {}
    how = f"HTTP, {settings.get('workers')} workers x {settings.get('intra_op_threads')} ORT thread"
    name = f"all-MiniLM-L6-v2, ORT, batch {teacher['batch_size']}, {teacher['threads']} threads"
    each = " and ".join(f"{v:,.0f}" for v in teacher.get("rounds_sentences_per_s", []))
    rows = [
        [f"{name} (mean of the runs before and after the lists run: {each})"]
        + [fmt(teacher["sentences_per_s"]), "1.0"]
    ]
    lists = dig(results.get("service"), "lists")
    if lists:
        what = f"/embed, {lists['clients']} clients x {lists['per_request']} sentences ({how})"
        rows.append([what, fmt(lists["sentences_per_s"]), fmt(r["embed_vs_teacher"], 1)])
    svc = dig(service_row(results, "embed", "on", CLIENTS), "sentences_per_s")
    what = f"/embed, {CLIENTS} clients x 1 sentence ({how})"
    rows.append([what, fmt(svc), fmt(r["embed_single_vs_teacher"], 1)])
    for B in (32, 128):
        if row := engine_row(results, "ort", "embed", B):
            x = fmt(r[f"ort_embed_b{B}_vs_teacher"], 1)
            rows.append([f"embed path, raw ORT, batch {B}", fmt(row["sentences_per_s"]), x])
    title = "Peer: all-MiniLM-L6-v2 (the teacher) on ONNX Runtime"
    return _table(title, "", "what | sentences/s | x teacher", rows)


def _spacy(results: Results, summary: dict[str, Any]) -> list[str]:
    s = results.get("spacy")
    if not s:
        return []
    labels = s.get("labels") or {}
    intro = (
        f"spaCy {s.get('version')}. A stand-in for en_core_web_sm (not installable here; its "
        "speed is its architecture's): spaCy's own `init config --pipeline tagger,ner "
        "--optimize efficiency` with en_core_web_sm 3.8's config differences applied: "
        f"{'; '.join(s.get('sm_overrides', []))}. Weights initialized, not trained (labels from "
        f"{s.get('init_examples')} EWT train sentences: {labels.get('tagger')} UPOS tags, NER "
        f"{', '.join(labels.get('ner', []))}): speed only. tok2vec + tagger + ner, one thread, "
        "EWT dev as gold words through `nlp.pipe`. /tag: the lists run above, tokenizing included."
    )
    rows = []
    for key, name, target in (
        ("stand_in", "spaCy stand-in (en_core_web_sm 3.8 components)", "tag_vs_spacy"),
        ("init_config", "spaCy `init config` as generated", "tag_vs_spacy_init"),
    ):
        r = s.get(key) or {}
        rows.append(
            [f"{name}, batch {r.get('batch_size')}", fmt(r.get("words_per_s"))]
            + [fmt(r.get("sentences_per_s")), fmt(r.get("cores"), 2)]
            + [fmt(summary["ratios"].get(target), 2)]
        )
    if lists := single_row(results, "tag", "lists", "repeated"):
        rows.append(
            [f"/tag, {lists['clients']} conns x {lists['per_request']} sentences"]
            + [fmt(lists.get("words_per_s")), fmt(lists["sentences_per_s"])]
            + [fmt(dig(lists, "server", "cpu"), 2), "1.00"]
        )
    header = "what | words/s | sentences/s | cores used | /tag lists words/s / this"
    out = _table("/tag vs spaCy (a stand-in for en_core_web_sm)", intro, header, rows)
    if s.get("config"):
        out += ["", "<details><summary>The stand-in's config</summary>", "", "```ini"]
        out += [s["config"].strip(), "```", "", "</details>"]
    return out


def _physical(results: Results, summary: dict[str, Any]) -> list[str]:
    f, peak = dig(results.get("flops"), "per_path"), results.get("peak", {})
    if not f:
        return []
    intro = (
        f"FLOPs per piece: tag {f['tag']['piece'] / 1e6:.2f} M, embed "
        f"{f['embed']['piece'] / 1e6:.2f} M (+ {f['embed']['sentence'] / 1e6:.2f} M per "
        "sentence); GRU `2 * 3H * (I + H)` per direction per piece, weights `2 * K * N` per "
        "row. Dense float32 matmul "
        f"({dig(peak, 'as_is', 'n')}^2, numpy): {fmt(dig(peak, 'as_is', 'gflops'), 1)} GFLOP/s as "
        f"configured, {fmt(dig(peak, 'single_thread', 'gflops'), 1)} on one thread. Useful FLOPs "
        "count real pieces only; the service's pieces/s is its sentences/s times the corpus mean."
    )
    rows = [
        [r["task"], r["what"], fmt(r["pieces_per_s"]), fmt(r["gflops"], 2)]
        + [
            fmt(r["peak_gflops"], 1),
            fmt(None if r["share"] is None else 100 * r["share"], 1) + " %",
        ]
        for r in summary["physical"]
    ]
    header = "path | measured | pieces/s | useful GFLOP/s | peak GFLOP/s | share of peak"
    return _table("Physical limit", intro, header, rows)


def _bounds(results: Results, summary: dict[str, Any]) -> list[str]:
    b = summary.get("bounds") or {}
    if not b:
        return []
    out = ["", "## What bounds the targets (from this run's figures)", ""]
    for task in TASKS:
        t = b.get(task) or {}
        v = defaultdict(lambda: "n/a", {k: fmt(x, 2) for k, x in t.items()})
        peak = t.get("torch_b32_peak_share")
        share, need = fmt(peak and 100 * peak, 1), fmt(peak and 150 * peak, 1)
        out.append(
            f"- /{task} vs its ceiling: the service spends {v['server_cpu_ms_per_request']} "
            f"CPU-ms per request at {CLIENTS} clients, ORT {v['ort_cpu_ms_per_sentence']} per "
            "sentence in the ceiling: the rest (HTTP, JSON, tokenizing, decoding, queueing, ORT "
            f"slowed by sharing the cores) takes {v['front_end_cpu_ms_per_request']} "
            f"({v['front_end_over_ort']}x ORT's), so with both cores always busy the service "
            f"reaches at most {v['ceiling_share_bound']} of the ceiling. Batching: ORT alone "
            f"gains {v['ort_b32_over_b1']}x from batch 1 to 32, and the front end does not "
            f"batch. ORT vs PyTorch: PyTorch eager uses {share} % of the matmul peak at batch 32; "
            f"1.5x would need ORT at {need} %."
        )
        out.append(
            f"- /{task} one sentence per request vs lists: {v['single_cpu_ms_per_sentence']} "
            f"server CPU-ms per sentence one at a time, {v['lists_cpu_ms_per_sentence']} in "
            "lists: with the cores as busy in both, single / lists is at most "
            f"{v['single_over_lists_bound']}."
        )
    p = b.get("p99_tag_8") or {}
    out.append(
        "- /tag p99 at 8 clients: closed-loop clients send again once answered, so the mean "
        f"latency is 8 / throughput (Little's law; {fmt(p.get('requests_per_s'))} requests/s on "
        f"{fmt(p.get('server_cpu'), 2)} cores) = {fmt(p.get('mean_ms'), 1)} ms, and p99 is "
        f"{fmt(p.get('p99_over_mean'), 2)}x the mean; p99 <= 50 ms needs about "
        f"{fmt(p.get('requests_per_s_needed'))} requests/s at 8 clients."
    )
    return out


def plot(results: Results, prefix: Path) -> list[Path]:
    """PNGs next to the results: service throughput and latency vs clients, engine rates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    service = results.get("service", {}).get("rows", [])
    engine = results.get("engine", {}).get("rows", [])
    for name, rows in (("throughput", service), ("latency", service), ("engine", engine)):
        if not rows:
            continue
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax, task in zip(axes, TASKS, strict=True):
            _draw(ax, name, task, [r for r in rows if r["task"] == task], results)
            ticks = sorted({r["batch_size" if name == "engine" else "clients"] for r in rows})
            ax.set_xscale("log", base=2)
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.minorticks_off()
            ax.legend(fontsize=7)
        fig.tight_layout()
        path = prefix.with_name(f"{prefix.name}-{name}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def _draw(ax: Any, name: str, task: str, rows: list[dict[str, Any]], results: Results) -> None:
    """One panel: a line per batching setting (per engine), and the ceiling or the p99 target."""
    key, values = ("engine", ("ort", "torch")) if name == "engine" else ("batching", ("on", "off"))
    x = "batch_size" if name == "engine" else "clients"
    for value, ls in zip(values, ("-", "--"), strict=True):
        sel = sorted((r for r in rows if r[key] == value), key=lambda r: r[x])
        xs = [r[x] for r in sel]
        if name == "latency":
            for q, marker in (("p50", "o"), ("p95", "^"), ("p99", "s")):
                ys = [r["latency_ms"][q] for r in sel]
                ax.plot(xs, ys, ls=ls, marker=marker, label=f"{q}, batching {value}")
        else:
            y = "pieces_per_s" if name == "engine" else "sentences_per_s"
            ax.plot(xs, [r[y] for r in sel], ls=ls, marker="o", label=f"{key} {value}")
    ceiling = dig(results.get("ceiling", {}).get(task), "sentences_per_s")
    if name == "throughput" and ceiling:
        ax.axhline(ceiling, color="gray", ls=":", label=f"raw ORT ceiling ({CLIENTS} clients)")
    if name == "latency" and task == "tag":
        ax.axhline(50, color="gray", ls=":", label="p99 target at 8 clients")
    ylabel = {"throughput": "sentences/s", "latency": "ms", "engine": "pieces/s"}[name]
    title = f"{task} path" if name == "engine" else f"/{task} {name}"
    ax.set(title=title, xlabel=x.replace("_", " "), ylabel=ylabel)
    ax.set_yscale("log" if name == "latency" else "linear")
