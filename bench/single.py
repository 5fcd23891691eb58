"""One sentence per request at engine speed: the phases `bench.run` adds for it.

- `phase_single`: one server; per route, lists of PER_REQUEST sentences at LIST_CLIENTS
  connections, then one sentence per request at CLIENTS on repeated text (EWT dev cycled), then
  on novel text (corpus sentences, each sent at most once in the run: the two routes get
  disjoint halves of the pool, and the load never wraps around its list unless it runs dry).
- `phase_processes`: the same one-sentence load on repeated text against a fresh server per
  `BIGRU_PROCESSES` setting, with the server's CPU summed over its process tree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app.config import Settings
from bench import service, texts
from bench.plan import Log, Plan
from bench.rows import CLIENTS, LIST_CLIENTS, PER_REQUEST

WORDS_SAMPLE = 20_000  # texts whose tokens are counted for the words/s of /tag


def _line(r: dict[str, Any]) -> str:
    lat, srv = r["latency_ms"], r["server"]
    return (
        f"{r['requests_per_s']:>7,.0f} req/s {r['sentences_per_s']:>7,.0f} sent/s p50 "
        f"{lat['p50'] or 0:6.1f} p99 {lat['p99'] or 0:6.1f} ms server CPU {srv['cpu'] or 0:.2f} "
        f"errors {r['errors']} ({r['tool']})"
    )


def phase_single(
    results: dict[str, Any],
    plan: Plan,
    settings: Settings,
    texts_file: Path,
    novel: list[str],
    workdir: Path,
    log: Log,
) -> None:
    rows = results.setdefault("single", {}).setdefault("rows", [])
    repeated = json.loads(texts_file.read_text(encoding="utf-8"))
    half = len(novel) // 2
    pools = {"tag": novel[:half], "embed": novel[half:]}
    with service.server(settings.model_dir, {}, workdir / "server-single.log") as (base, pid):
        for task in ("tag", "embed"):
            novel_file = workdir / f"novel-{task}.json"
            novel_file.write_text(json.dumps(pools[task]))
            in_lists = repeated[: len(repeated) // PER_REQUEST * PER_REQUEST]
            runs = [
                ("lists", "repeated", LIST_CLIENTS, PER_REQUEST, texts_file, in_lists),
                ("single", "repeated", CLIENTS, 1, texts_file, repeated),
                ("single", "novel", CLIENTS, 1, novel_file, pools[task]),
            ]
            for request, text, clients, per_request, path, sent in runs:
                r = service.load_run(
                    base,
                    pid,
                    task,
                    clients,
                    path,
                    plan.warmup_s,
                    plan.service_s,
                    plan.load_tool,
                    per_request,
                )
                row = {"task": task, "request": request, "text": text, **r}
                if task == "tag":  # /tag answers with one token per word
                    words = texts.words_per_text(sent[:WORDS_SAMPLE])
                    row["words_per_s"] = r["sentences_per_s"] * words
                rows.append(row)
                if text == "novel" and r["requests_sent"] > r["distinct_bodies"]:
                    results["notes"].append(
                        f"/{task} novel text: {r['requests_sent']:,} requests sent but only "
                        f"{r['distinct_bodies']:,} distinct sentences: some were repeated "
                        "(raise Plan.novel_texts)"
                    )
                what = f"{clients} x {per_request}" if per_request > 1 else f"{clients} x 1"
                log("single", f"/{task:5} {what:7} {text:8} {_line(row)}")


def phase_processes(
    results: dict[str, Any],
    plan: Plan,
    settings: Settings,
    texts_file: Path,
    workdir: Path,
    log: Log,
) -> None:
    section = results.setdefault("processes", {"settings": list(plan.processes), "rows": []})
    for n in plan.processes:
        env = {"BIGRU_PROCESSES": str(n)}
        log_path = workdir / f"server-processes-{n}.log"
        with service.server(settings.model_dir, env, log_path) as (base, pid):
            for task in ("tag", "embed"):
                r = service.load_run(
                    base,
                    pid,
                    task,
                    CLIENTS,
                    texts_file,
                    plan.warmup_s,
                    plan.service_s,
                    plan.load_tool,
                )
                section["rows"].append({"task": task, "processes": n, **r})
                log(
                    "procs",
                    f"/{task:5} BIGRU_PROCESSES={n} ({r['server_processes']} in the tree) "
                    f"{_line(r)}",
                )
