"""The report's measurement tables, each a list of Markdown lines from the results dict:
engines, service vs ceiling, the service over HTTP, the peer, one sentence per request vs lists,
server processes, and the spaCy stand-in."""

from __future__ import annotations

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


def engine_table(results: dict[str, Any]) -> list[str]:
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
            x = ratio(dig(o, "pieces_per_s"), dig(t, "pieces_per_s"))
            out.append(
                f"| {task} | {B} | {fmt(dig(o, 'pieces_per_s'))} | "
                f"{fmt(dig(o, 'sentences_per_s'))} | {fmt(dig(t, 'pieces_per_s'))} | "
                f"{fmt(dig(t, 'sentences_per_s'))} | {fmt(x, 2)} |"
            )
    return out


def ceiling_table(results: dict[str, Any]) -> list[str]:
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
            f"| /{task} | {fmt(svc)} | {fmt(c.get('recorded_service_sentences_per_s'))} | "
            f"{fmt(c.get('sentences_per_s'))} | {fmt(ratio(svc, c.get('sentences_per_s')), 2)} "
            f"| {fmt(c.get('mean_batch_size'), 1)} | "
            f"{fmt(dig(c, 'in_process', 'sentences_per_s'))} | "
            f"{fmt(dig(c, 'in_process', 'mean_batch_size'), 1)} |"
        )
    return out


def service_table(results: dict[str, Any]) -> list[str]:
    out = [
        "",
        "## Service over HTTP (closed loop, one sentence per request)",
        "",
        "`python -m app` under uvicorn on loopback, settings from the environment (batching off: "
        "`BIGRU_MAX_BATCH_SIZE=1`). Load in its own process, so the client's CPU is not the "
        "server's: closed loop with exactly N connections, each sending its next request when "
        "its answer is in (N is the concurrency, not a guess from a rate); loopback only; "
        "bounded in time. Tool `wrk`: Debian's wrk (C, one thread, `bench/wrk.lua` cycles the "
        "JSON bodies and counts statuses), a few percent of a core at these rates; its "
        "latencies cover every answer. Tool `raw`: `bench/load.py`, stdlib asyncio, used where "
        "wrk is not installed; it spends up to a core of its own at thousands of requests/s. "
        "Mean batch and ORT busy (share of wall time inside ORT runs) come from the server's "
        "/metrics; CPU columns are cores used (server: its process tree from /proc; client "
        "from getrusage).",
        "",
        "| route | batching | clients | tool | req/s | p50 ms | p95 ms | p99 ms | mean batch "
        "| ORT busy | server CPU | client CPU | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results.get("service", {}).get("rows", []):
        lat, srv = r["latency_ms"], r["server"]
        out.append(
            f"| /{r['task']} | {r['batching']} | {r['clients']} | {r.get('tool')} | "
            f"{fmt(r['requests_per_s'])} | {fmt(lat['p50'], 1)} | {fmt(lat['p95'], 1)} "
            f"| {fmt(lat['p99'], 1)} | {fmt(srv['mean_batch_size'], 1)} | "
            f"{fmt(srv['ort_busy'], 2)} | {fmt(srv['cpu'], 2)} | "
            f"{fmt(r['client_cpu'], 2)} | {r['errors']} |"
        )
    return out


def peer_table(results: dict[str, Any], summary: dict[str, Any]) -> list[str]:
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
    out += [f"| {name} | {fmt(v)} | {fmt(x, 1)} |" for name, v, x in rows]
    return out


def single_table(results: dict[str, Any]) -> list[str]:
    rows = results.get("single", {}).get("rows", [])
    if not rows:
        return []
    out = [
        "",
        "## One sentence per request vs lists (one server, batching on)",
        "",
        f"Lists: {LIST_CLIENTS} connections, each request {PER_REQUEST} consecutive EWT dev "
        f"sentences. One sentence per request: {CLIENTS} connections, on repeated text (EWT dev "
        "cycled: the tokenizer's caches are warm) and on novel text (sentences.txt lines that are "
        "in neither EWT dev nor train, in file order, each sent at most once in the whole run: "
        "`distinct / sent` shows it). Words/s for /tag: requests/s times the mean number of "
        "tokens the service's tokenizer makes of the bodies cycled (what /tag answers with).",
        "",
        "| route | request | text | conns | tool | req/s | sent/s | words/s | p50 ms | p99 ms "
        "| server CPU | CPU-ms / sentence | errors | distinct / sent |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lat = r["latency_ms"]
        per_sentence = ratio(cpu_ms_per_request(r), r["per_request"])
        out.append(
            f"| /{r['task']} | {r['request']} | {r['text']} | {r['clients']} | {r.get('tool')} | "
            f"{fmt(r['requests_per_s'])} | {fmt(r['sentences_per_s'])} | "
            f"{fmt(r.get('words_per_s'))} | {fmt(lat['p50'], 1)} | {fmt(lat['p99'], 1)} | "
            f"{fmt(dig(r, 'server', 'cpu'), 2)} | {fmt(per_sentence, 2)} | {r['errors']} | "
            f"{fmt(r.get('distinct_bodies'))} / {fmt(r.get('requests_sent'))} |"
        )
    return out


def processes_table(results: dict[str, Any]) -> list[str]:
    section = results.get("processes", {})
    if not section.get("rows"):
        return []
    out = [
        "",
        "## Server processes (`BIGRU_PROCESSES`)",
        "",
        f"One sentence per request at {CLIENTS} connections, repeated text, one fresh server per "
        "setting. Server CPU is summed over the server's process tree (the process and all its "
        "descendants, from /proc); `processes` counts that tree during the run. Mean batch and "
        "ORT busy are left out: /metrics answers from one process.",
        "",
        "| route | BIGRU_PROCESSES | processes | tool | req/s | p50 ms | p99 ms | server CPU "
        "| CPU-ms / request | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for task in ("tag", "embed"):
        for n in section.get("settings", []):
            r = processes_row(results, task, n)
            if r is None:
                continue
            out.append(
                f"| /{task} | {n} | {fmt(r.get('server_processes'))} | {r.get('tool')} | "
                f"{fmt(r['requests_per_s'])} | {fmt(r['latency_ms']['p50'], 1)} | "
                f"{fmt(r['latency_ms']['p99'], 1)} | {fmt(dig(r, 'server', 'cpu'), 2)} | "
                f"{fmt(cpu_ms_per_request(r), 2)} | {r['errors']} |"
            )
    settings = section.get("settings", [])
    if len(settings) > 1:
        first, last = settings[0], settings[-1]
        rps = {
            (task, n): dig(processes_row(results, task, n), "requests_per_s")
            for task in ("tag", "embed")
            for n in (first, last)
        }
        gains = [
            f"/{task} {fmt(ratio(rps[task, last], rps[task, first]), 2)}x"
            for task in ("tag", "embed")
        ]
        out += ["", f"Requests/s, {last} processes over {first}: {', '.join(gains)}."]
    return out


def spacy_table(results: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    s = results.get("spacy")
    if not s:
        return []
    lists = single_row(results, "tag", "lists", "repeated")
    labels = s.get("labels") or {}
    out = [
        "",
        "## /tag vs spaCy (a stand-in for en_core_web_sm)",
        "",
        f"spaCy {s.get('version')}. en_core_web_sm cannot be installed here, and its speed depends "
        "on its architecture, not its weights, so the stand-in is built from spaCy's own config "
        "(`spacy init config --lang en --pipeline tagger,ner --optimize efficiency`) with the "
        "differences from en_core_web_sm 3.8's published config.cfg applied: "
        f"{'; '.join(s.get('sm_overrides', []))}. Its weights are initialized (labels from "
        f"{s.get('init_examples')} EWT train sentences: {labels.get('tagger')} UPOS tags, NER "
        f"{', '.join(labels.get('ner', []))}) and not trained: only speed is compared, not "
        "accuracy. "
        "Both pipelines run tok2vec + tagger + ner only, in this process, on one thread, over "
        "EWT dev given as gold words (`Doc(nlp.vocab, words=...)`, so no spaCy tokenizing), "
        "with `nlp.pipe(docs, batch_size=...)`. /tag: the lists run above (raw text in, its own "
        "tokenizing included; words are its tokens).",
        "",
        "| what | words/s | sentences/s | cores used | /tag lists words/s / this |",
        "|---|---|---|---|---|",
    ]
    pipelines = {
        "stand_in": ("spaCy stand-in (en_core_web_sm 3.8 components)", "tag_vs_spacy"),
        "init_config": (
            "spaCy `init config` as generated (one shared tok2vec)",
            "tag_vs_spacy_init",
        ),
    }
    for key, (name, target) in pipelines.items():
        r = s.get(key) or {}
        out.append(
            f"| {name}, batch {r.get('batch_size')} | {fmt(r.get('words_per_s'))} | "
            f"{fmt(r.get('sentences_per_s'))} | {fmt(r.get('cores'), 2)} | "
            f"{fmt(summary['ratios'].get(target), 2)} |"
        )
    if lists:
        out.append(
            f"| /tag service, {lists['clients']} conns x {lists['per_request']} sentences per "
            f"request ({lists['tool']}; server cores) | {fmt(lists.get('words_per_s'))} | "
            f"{fmt(lists['sentences_per_s'])} | {fmt(dig(lists, 'server', 'cpu'), 2)} | 1.00 |"
        )
    if s.get("config"):
        out += ["", "<details><summary>The stand-in's config</summary>", "", "```ini"]
        out += [s["config"].strip(), "```", "", "</details>"]
    return out
